/**
 * Whether a store's schema is current, read without changing it (`portcullis doctor`): the
 * migrations this build knows against those recorded in `portcullis_migration`, and the
 * database's clock (PostgreSQL) to compare with this machine's. Opening a store through
 * ./open.ts would migrate it; this only reads.
 */
import { existsSync } from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { migrations } from "./migrations/index.js";
import { isPostgresSpec } from "./open.js";

export interface MigrationStatus {
  /** False: a SQLite file that does not exist yet (the first start creates it). */
  exists: boolean;
  /** Known to this build, not yet applied (the next start applies them). */
  pending: string[];
  /** Applied by a newer build: this one cannot use the store. */
  unknown: string[];
  /** The database's clock when asked (PostgreSQL only), and this machine's at the same moment. */
  clock?: { store: Date; local: Date };
}

const CONNECT_TIMEOUT_MS = 5_000;

function compare(
  applied: string[],
  dialect: "sqlite" | "postgres",
): Pick<MigrationStatus, "pending" | "unknown"> {
  const known = Object.keys(migrations(dialect));
  return {
    pending: known.filter((m) => !applied.includes(m)),
    unknown: applied.filter((m) => !known.includes(m)),
  };
}

/** Reads the migration state of the store at `spec` (a SQLite file or a postgres:// URL). Throws when unreachable. */
export async function migrationStatus(spec: string): Promise<MigrationStatus> {
  if (!isPostgresSpec(spec)) {
    if (!existsSync(spec)) return { exists: false, pending: Object.keys(migrations("sqlite")), unknown: [] };
    const db = new BetterSqlite3(spec, { readonly: true, fileMustExist: true });
    try {
      const table = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'portcullis_migration'")
        .get();
      const applied =
        table === undefined
          ? []
          : (db.prepare("SELECT name FROM portcullis_migration").all() as Array<{ name: string }>).map(
              (r) => r.name,
            );
      return { exists: true, ...compare(applied, "sqlite") };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({
    connectionString: spec,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: "portcullis-doctor",
  });
  // A connection the server drops after connect is reported by the next query, not as a crash.
  client.on("error", () => {});
  await client.connect();
  try {
    const before = Date.now();
    const now = await client.query<{ now: Date }>("SELECT now() AS now");
    const local = new Date((before + Date.now()) / 2);
    const table = await client.query("SELECT to_regclass('portcullis_migration') AS t");
    const applied =
      table.rows[0]?.t === null
        ? []
        : (await client.query<{ name: string }>("SELECT name FROM portcullis_migration")).rows.map(
            (r) => r.name,
          );
    return {
      exists: true,
      ...compare(applied, "postgres"),
      clock: { store: new Date(now.rows[0]?.now as Date), local },
    };
  } finally {
    await client.end();
  }
}
