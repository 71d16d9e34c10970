/**
 * The audit hot path: every batch the AuditWriter commits (group commit, src/audit/writer.ts)
 * ends here, so it skips Kysely's query building. SQLite inserts row by row through
 * better-sqlite3 statements prepared once per store and reused, in one transaction per
 * batch (DESIGN.md: ~2.5 µs per row in a transaction). PostgreSQL gets one multi-row INSERT
 * per chunk whose SQL text is built once per row count; a batch that is a single statement
 * needs no BEGIN/COMMIT round trips. Both write exactly the rows Kysely would.
 */
import type BetterSqlite3 from "better-sqlite3";
import { CompiledQuery, type Kysely } from "kysely";
import type { NewAuditRow } from "../rows.js";
import type { AuditCheckpointsTable, Schema } from "../schema.js";

/** Inserts audit rows and checkpoints in one transaction. */
export interface AuditBatchInsert {
  insert(db: Kysely<Schema>, rows: NewAuditRow[], checkpoints: AuditCheckpointsTable[]): Promise<void>;
}

/** Rows per INSERT statement: keeps audit batches under both dialects' bind-parameter limits. */
export const AUDIT_CHUNK = 500;

/** The columns of one new `audit_log` row, in bind order. */
const AUDIT_COLUMNS = [
  "at",
  "environment",
  "principal",
  "method",
  "credential_id",
  "server",
  "rpc_method",
  "tool",
  "decision",
  "reason",
  "latency_us",
  "detail",
  "decision_id",
  "policy_version",
  "rule_ids",
  "chain",
  "chain_seq",
  "prev_hash",
  "hash",
  "arguments",
  "task_id",
] as const satisfies readonly (keyof NewAuditRow)[];

const CHECKPOINT_COLUMNS = [
  "chain",
  "chain_seq",
  "hash",
  "count",
  "at",
  "key_id",
  "signature",
  "registry_seq",
  "registry_hash",
] as const satisfies readonly (keyof AuditCheckpointsTable)[];

type Value = string | number | null;

/** The values of AUDIT_COLUMNS, in order (spelled out: this runs once per audit record). */
function auditValues(r: NewAuditRow): Value[] {
  return [
    r.at,
    r.environment,
    r.principal,
    r.method,
    r.credential_id,
    r.server,
    r.rpc_method,
    r.tool,
    r.decision,
    r.reason,
    r.latency_us,
    r.detail,
    r.decision_id,
    r.policy_version,
    r.rule_ids,
    r.chain,
    r.chain_seq,
    r.prev_hash,
    r.hash,
    r.arguments,
    r.task_id,
  ];
}

function checkpointValues(row: AuditCheckpointsTable): Value[] {
  return CHECKPOINT_COLUMNS.map((c) => row[c]);
}

function insertSql(
  table: string,
  columns: readonly string[],
  rows: number,
  placeholder: (i: number) => string,
) {
  const tuples: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) tuples.push(`(${columns.map(() => placeholder(++n)).join(", ")})`);
  return `insert into "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) values ${tuples.join(", ")}`;
}

/** SQLite: one prepared statement per table, reused for every row of every batch. */
export function sqliteAuditInsert(raw: BetterSqlite3.Database): AuditBatchInsert {
  // Prepared on first use: the tables exist only once the store is migrated.
  let statements: {
    audit: BetterSqlite3.Statement<[Value[]]>;
    checkpoint: BetterSqlite3.Statement<[Value[]]>;
  };
  let batch: ((rows: NewAuditRow[], checkpoints: AuditCheckpointsTable[]) => void) | undefined;
  const prepared = () => {
    if (batch !== undefined) return batch;
    statements = {
      audit: raw.prepare<[Value[]]>(insertSql("audit_log", AUDIT_COLUMNS, 1, () => "?")),
      checkpoint: raw.prepare<[Value[]]>(insertSql("audit_checkpoints", CHECKPOINT_COLUMNS, 1, () => "?")),
    };
    batch = raw.transaction((rows: NewAuditRow[], checkpoints: AuditCheckpointsTable[]) => {
      for (const row of rows) statements.audit.run(auditValues(row));
      for (const c of checkpoints) statements.checkpoint.run(checkpointValues(c));
    });
    return batch;
  };
  return {
    // The connection is Kysely's, taken through its lock: no Kysely transaction is open on it
    // meanwhile, so this batch is its own transaction, never part of another's.
    insert: (db, rows, checkpoints) =>
      db.connection().execute(async () => {
        prepared()(rows, checkpoints);
      }),
  };
}

/** PostgreSQL (and any other dialect): multi-row INSERTs whose SQL text is built once per row count. */
export function multiRowAuditInsert(): AuditBatchInsert {
  // At most AUDIT_CHUNK texts of each kind: bounded.
  const auditTexts = new Map<number, string>();
  const checkpointTexts = new Map<number, string>();
  const text = (cache: Map<number, string>, table: string, columns: readonly string[], rows: number) => {
    let sql = cache.get(rows);
    if (sql === undefined) {
      sql = insertSql(table, columns, rows, (i) => `$${i}`);
      cache.set(rows, sql);
    }
    return sql;
  };
  const queries = (rows: NewAuditRow[], checkpoints: AuditCheckpointsTable[]): CompiledQuery[] => {
    const out: CompiledQuery[] = [];
    for (let i = 0; i < rows.length; i += AUDIT_CHUNK) {
      const chunk = rows.slice(i, i + AUDIT_CHUNK);
      out.push(
        CompiledQuery.raw(
          text(auditTexts, "audit_log", AUDIT_COLUMNS, chunk.length),
          chunk.flatMap(auditValues),
        ),
      );
    }
    for (let i = 0; i < checkpoints.length; i += AUDIT_CHUNK) {
      const chunk = checkpoints.slice(i, i + AUDIT_CHUNK);
      out.push(
        CompiledQuery.raw(
          text(checkpointTexts, "audit_checkpoints", CHECKPOINT_COLUMNS, chunk.length),
          chunk.flatMap(checkpointValues),
        ),
      );
    }
    return out;
  };
  return {
    async insert(db, rows, checkpoints) {
      const all = queries(rows, checkpoints);
      const [only] = all;
      // One statement is atomic on its own: no BEGIN/COMMIT round trips.
      if (all.length === 1 && only !== undefined) {
        await db.executeQuery(only);
        return;
      }
      if (all.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const q of all) await trx.executeQuery(q);
      });
    },
  };
}
