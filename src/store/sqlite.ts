/**
 * The embedded store: one SQLite file through better-sqlite3 (WAL, so readers never wait
 * for the writer). Other processes on the same file (the CLI revoking a key, a second
 * gateway) are noticed with `PRAGMA data_version`, which changes only when another
 * connection commits: a synchronous check of a few microseconds that the request path
 * runs before trusting its key cache.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, type Transaction } from "kysely";
import { sqliteAuditInsert } from "./repositories/auditInsert.js";
import type { Schema } from "./schema.js";
import { SqlStore } from "./sqlStore.js";
import type { KeyWatch, Store } from "./types.js";

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

class SqliteStore extends SqlStore {
  private readonly live = new Set<SqliteKeyWatch>();

  constructor(private readonly raw: Connection) {
    super(
      "sqlite",
      new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) }),
      sqliteAuditInsert(raw),
    );
  }

  /** Other processes find out through data_version; there is nothing to send. */
  protected override async announceKeys(_trx: Transaction<Schema>, _revision: number): Promise<void> {}

  /** data_version does not move for this connection's own commits, so tell local watches directly. */
  protected override keysCommitted(): void {
    for (const w of this.live) w.ownChange();
  }

  protected override createWatch(onChange: () => void): KeyWatch {
    const watch = new SqliteKeyWatch(this.raw, onChange, () => this.live.delete(watch));
    this.live.add(watch);
    return watch;
  }
}

/**
 * data_version moves on any commit by another connection, audit writes included; the
 * keys revision is read only then, so only key mutations reach onChange.
 */
class SqliteKeyWatch implements KeyWatch {
  private readonly dataVersion: BetterSqlite3.Statement<[], number>;
  private readonly revision: BetterSqlite3.Statement<[], number>;
  private lastDataVersion: number;
  private lastRevision: number;
  private closed = false;

  constructor(
    raw: Connection,
    private readonly onChange: () => void,
    private readonly onClose: () => void,
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
    this.onChange();
  }

  ownChange(): void {
    if (this.closed) return;
    this.lastRevision = this.readRevision();
    this.onChange();
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
  }
}
