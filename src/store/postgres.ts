/**
 * The shared store for several gateway replicas: PostgreSQL through a pg Pool.
 * Revocation fan-out uses LISTEN/NOTIFY: every key mutation bumps the `keys` revision and
 * sends `NOTIFY portcullis_keys` in the same transaction, so the notification is delivered
 * exactly when the change is visible. The store's one change feed (./changeFeed.ts) holds
 * one dedicated listener connection per replica, shared by every cache in the process;
 * while it is down (or stops answering its heartbeat) the feed reports unhealthy and the
 * gateway fails closed, and once it is back the feed reports a change so caches reload
 * whatever they missed.
 */
import { Kysely, PostgresDialect, sql, type Transaction } from "kysely";
import pg from "pg";
import { OperationalError } from "../core/operationalError.js";
import { type ChangeDetector, ChangeFeed } from "./changeFeed.js";
import type { Schema } from "./schema.js";
import { SqlStore } from "./sqlStore.js";
import type { Store } from "./types.js";

/** The notification channel for key mutations; the payload is the new keys revision. */
export const KEYS_CHANNEL = "portcullis_keys";
/** application_name of the listener connection, one per replica (visible in pg_stat_activity). */
export const LISTENER_APPLICATION_NAME = "portcullis-key-listener";

const INT8_OID = 20;
const RECONNECT_MIN_MS = 100;
/** Low enough that a replica follows changes again within about a second of the database's return. */
const RECONNECT_MAX_MS = 1_000;
/** A connection attempt that hangs (a half-dead host) fails after this, so the request gets its 503. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * bigint columns (epoch-millisecond instants, counters, sequence numbers) come back as JS
 * numbers, as they do from SQLite. Scoped to this store's connections, not pg's globals.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary"
      ? Number
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

export interface PostgresStoreOptions {
  /** Pool size for queries (the one listener connection is extra). Default 10. */
  poolSize?: number;
  /** How often the listener connection proves it is alive; also its answer deadline. Default 5000 ms. */
  heartbeatMs?: number;
  /**
   * A connection failed outside any query (the server restarted, a socket was reset). Such
   * errors are reported here and never thrown: the pool replaces the connection and the
   * next query reports its own error.
   */
  onConnectionError?: (err: Error) => void;
}

/** Connects to `url` (postgres:// or postgresql://). Call migrate() before use. */
export async function openPostgresStore(url: string, opts: PostgresStoreOptions = {}): Promise<Store> {
  const config: pg.ClientConfig = {
    connectionString: url,
    types,
    application_name: "portcullis",
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
  const pool = new pg.Pool({ ...config, max: opts.poolSize ?? 10 });
  const report = (err: Error) => opts.onConnectionError?.(err);
  // An idle connection that dies is dropped and replaced by the pool.
  pool.on("error", report);
  // pg-pool removes its own 'error' listener while a client is checked out, so a connection
  // the server terminates (57P01 on restart) between two queries of a transaction would emit an
  // unhandled 'error' and crash the process. Every client keeps a listener for its whole life;
  // the query in flight, if any, still gets the error itself.
  pool.on("connect", (client) => {
    client.on("error", report);
  });
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    await pool.end().catch(() => {});
    const reason = err instanceof Error ? err.message : String(err);
    throw new OperationalError(`cannot connect to the PostgreSQL store at ${redact(url)}: ${reason}`, {
      cause: err,
    });
  }
  return new PostgresStore(pool, config, opts.heartbeatMs ?? 5_000, report);
}

/** The URL without its password, for error messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

class PostgresStore extends SqlStore {
  protected readonly feed: ChangeFeed;

  constructor(pool: pg.Pool, config: pg.ClientConfig, heartbeatMs: number, report: (err: Error) => void) {
    super("postgres", new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) }));
    const listenerConfig = { ...config, application_name: LISTENER_APPLICATION_NAME, keepAlive: true };
    this.feed = new ChangeFeed((changed) => new PgKeyListener(listenerConfig, changed, heartbeatMs, report));
  }

  protected override async announceKeys(trx: Transaction<Schema>, revision: number): Promise<void> {
    await sql`SELECT pg_notify(${KEYS_CHANNEL}, ${String(revision)})`.execute(trx);
  }
}

/** One LISTEN connection, reconnected with exponential backoff. Unhealthy until LISTEN is active. */
class PgKeyListener implements ChangeDetector {
  private client: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private attempt = 0;
  private retry: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly onChange: () => void,
    private readonly heartbeatMs: number,
    private readonly report: (err: Error) => void,
  ) {
    void this.connect();
  }

  /** Notifications arrive on their own; nothing to check. */
  poll(): void {}

  /** This process's own commits are notified to its listener like anyone's. */
  ownCommit(): void {}

  healthy(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    if (this.retry) clearTimeout(this.retry);
    if (this.heartbeat) clearInterval(this.heartbeat);
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    this.retry = null;
    const client = new pg.Client(this.config);
    this.client = client;
    // Listeners stay attached after the client is dropped, so late 'error' events are never unhandled.
    client.on("error", (err) => {
      if (this.client === client) this.report(err);
      this.lost(client);
    });
    client.on("end", () => this.lost(client));
    client.on("notification", (msg) => {
      if (msg.channel === KEYS_CHANNEL && this.client === client) this.onChange();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${KEYS_CHANNEL}`);
    } catch (err) {
      if (this.client === client && err instanceof Error) this.report(err);
      this.lost(client);
      return;
    }
    if (this.client !== client) return;
    this.listening = true;
    this.attempt = 0;
    this.heartbeat = setInterval(() => this.beat(client), this.heartbeatMs);
    this.heartbeat.unref();
    // Anything committed while we were not listening was missed: make the caller reload.
    this.onChange();
  }

  /** A half-open TCP connection raises no error; a query that goes unanswered does reveal it. */
  private beat(client: pg.Client): void {
    const deadline = setTimeout(() => this.lost(client), this.heartbeatMs);
    deadline.unref();
    client.query("SELECT 1").then(
      () => clearTimeout(deadline),
      () => {
        clearTimeout(deadline);
        this.lost(client);
      },
    );
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    this.listening = false;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    client.end().catch(() => {});
    if (this.closed) return;
    const delay = Math.min(RECONNECT_MIN_MS * 2 ** this.attempt, RECONNECT_MAX_MS);
    this.attempt++;
    this.retry = setTimeout(() => void this.connect(), delay);
    this.retry.unref();
  }
}
