/**
 * The embedded store: one SQLite file through better-sqlite3 (WAL, so readers never wait
 * for the writer). Other processes on the same file (the CLI revoking a key, a second
 * gateway) are noticed with `PRAGMA data_version`, which changes only when another
 * connection commits: a synchronous check of a few microseconds, run by the process's one
 * change feed (./changeFeed.ts) on a timer and, at most every 20 ms, by the request path
 * before it trusts its key cache.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, type Transaction } from "kysely";
import { type ChangeDetector, ChangeFeed } from "./changeFeed.js";
import { sqliteAuditInsert } from "./repositories/auditInsert.js";
import type { Schema } from "./schema.js";
import { SqlStore } from "./sqlStore.js";
import type { Store } from "./types.js";

type Connection = BetterSqlite3.Database;

/** Opens (creating if needed) the SQLite file at `file`. Call migrate() before use. */
export async function openSqliteStore(file: string): Promise<Store> {
  let raw: Connection;
  try {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    raw = new BetterSqlite3(file);
    raw.pragma("journal_mode = WAL");
    raw.pragma("busy_timeout = 5000");
    raw.pragma("synchronous = NORMAL");
    raw.pragma("foreign_keys = ON");
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open the SQLite store at ${file}: ${reason}`, { cause: err });
  }
  return new SqliteStore(raw);
}

/** How often the feed looks for other processes' commits while nobody asks (tool pins, approvals). */
const BACKGROUND_POLL_MS = 250;

class SqliteStore extends SqlStore {
  protected readonly feed: ChangeFeed;

  constructor(raw: Connection) {
    super(
      "sqlite",
      new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) }),
      sqliteAuditInsert(raw),
    );
    this.feed = new ChangeFeed((changed) => new DataVersionPoller(raw, changed), {
      backgroundPollMs: BACKGROUND_POLL_MS,
    });
  }

  /** Other processes find out through data_version; there is nothing to send. */
  protected override async announceKeys(_trx: Transaction<Schema>, _revision: number): Promise<void> {}

  /** data_version does not move for this connection's own commits, so tell local subscribers directly. */
  protected override keysCommitted(): void {
    this.feed.ownCommit();
  }
}

/**
 * The process's one poller. data_version moves on any commit by another connection, audit
 * writes included; the keys revision is read only then, so only announced mutations fire.
 */
class DataVersionPoller implements ChangeDetector {
  private readonly dataVersion: BetterSqlite3.Statement<[], number>;
  private readonly revision: BetterSqlite3.Statement<[], number>;
  private lastDataVersion: number;
  private lastRevision: number;
  private closed = false;

  constructor(
    raw: Connection,
    private readonly changed: () => void,
  ) {
    try {
      this.dataVersion = raw.prepare<[], number>("PRAGMA data_version").pluck();
      this.revision = raw.prepare<[], number>("SELECT value FROM revisions WHERE name = 'keys'").pluck();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(`watchKeys: the SQLite store is not ready (run migrate() first): ${reason}`, {
        cause: err,
      });
    }
    this.lastDataVersion = this.dataVersion.get() as number;
    this.lastRevision = this.readRevision();
  }

  private readRevision(): number {
    return Number(this.revision.get() ?? 0);
  }

  poll(): void {
    if (this.closed) return;
    const version = this.dataVersion.get() as number;
    if (version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    const revision = this.readRevision();
    if (revision === this.lastRevision) return;
    this.lastRevision = revision;
    this.changed();
  }

  ownCommit(): void {
    if (!this.closed) this.lastRevision = this.readRevision();
  }

  healthy(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
