/**
 * The records of `audit_log` (docs/storage-schema.md): appended in batches by the AuditWriter
 * (through ./auditInsert.ts, the hot path), read by `portcullis audit` and verification.
 */
import { sql } from "kysely";
import { registerAuditChain } from "../auditRegistry.js";
import type {
  AuditChainRow,
  AuditCheckpoint,
  AuditQuery,
  AuditRecord,
  AuditRepository,
  ChainedAuditRecord,
  NewAuditChain,
  StoredAuditRecord,
} from "../auditTypes.js";
import { auditToRow, chainedAuditToRow, checkpointToRow, rowToAudit } from "../rows.js";
import type { AuditBatchInsert } from "./auditInsert.js";
import { AUDIT_CHUNK } from "./auditInsert.js";
import { checkLimit, DEFAULT_LIST_LIMIT, type StoreContext } from "./context.js";

/** A LIKE pattern (escape `\\`) matching values that contain `text`, lower-cased. */
function containsPattern(text: string) {
  return sql<string>`${`%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`} escape '\\'`;
}

export class SqlAuditRepository implements AuditRepository {
  constructor(
    private readonly ctx: StoreContext,
    private readonly batch: AuditBatchInsert,
  ) {}

  async appendAudit(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.batch.insert(this.ctx.db, records.map(auditToRow), []);
  }

  /** Newest first; at most `limit` records (default DEFAULT_LIST_LIMIT). */
  async listAudit(
    opts: { limit?: number; credentialId?: string; decisionId?: string } = {},
  ): Promise<StoredAuditRecord[]> {
    const limit = checkLimit("listAudit", opts.limit ?? DEFAULT_LIST_LIMIT);
    let q = this.ctx.db.selectFrom("audit_log").selectAll().orderBy("seq", "desc").limit(limit);
    if (opts.credentialId !== undefined) q = q.where("credential_id", "=", opts.credentialId);
    if (opts.decisionId !== undefined) q = q.where("decision_id", "=", opts.decisionId);
    return (await q.execute()).map(rowToAudit);
  }

  async appendAuditChain(
    records: ChainedAuditRecord[],
    checkpoints: AuditCheckpoint[],
    register?: NewAuditChain,
  ): Promise<void> {
    if (records.length === 0 && checkpoints.length === 0) return;
    const rows = records.map(chainedAuditToRow);
    const checkpointRows = checkpoints.map(checkpointToRow);
    // Every batch but a chain's first: the fast path.
    if (register === undefined) return this.batch.insert(this.ctx.db, rows, checkpointRows);
    await this.ctx.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += AUDIT_CHUNK) {
        await trx
          .insertInto("audit_log")
          .values(rows.slice(i, i + AUDIT_CHUNK))
          .execute();
      }
      // After the records: on SQLite the transaction then already holds the write lock.
      await registerAuditChain(trx, this.ctx.kind, register);
      if (checkpointRows.length > 0)
        await trx.insertInto("audit_checkpoints").values(checkpointRows).execute();
    });
  }

  async auditChainTail(chain: string): Promise<{ chainSeq: number; hash: string } | null> {
    const row = await this.ctx.db
      .selectFrom("audit_log")
      .select(["chain_seq", "hash"])
      .where("chain", "=", chain)
      .orderBy("chain_seq", "desc")
      .limit(1)
      .executeTakeFirst();
    return row === undefined || row.chain_seq === null || row.hash === null
      ? null
      : { chainSeq: Number(row.chain_seq), hash: row.hash };
  }

  async readAuditChain(chain: string, afterChainSeq: number, limit: number): Promise<AuditChainRow[]> {
    const rows = await this.ctx.db
      .selectFrom("audit_log")
      .selectAll()
      .where("chain", "=", chain)
      .where("chain_seq", ">", afterChainSeq)
      .orderBy("chain_seq")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...r, chain_seq: Number(r.chain_seq) }) as AuditChainRow);
  }

  async auditChainsInLog(): Promise<{
    chains: string[];
    unchained: number;
    unchainedMaxSeq: number | null;
    unchainedNewest: Date | null;
  }> {
    const chains = await this.ctx.db
      .selectFrom("audit_log")
      .select("chain")
      .distinct()
      .where("chain", "is not", null)
      .execute();
    const { n, maxSeq, maxAt } = await this.ctx.db
      .selectFrom("audit_log")
      .select((eb) => [
        eb.fn.countAll<number>().as("n"),
        eb.fn.max("seq").as("maxSeq"),
        eb.fn.max("at").as("maxAt"),
      ])
      .where("chain", "is", null)
      .executeTakeFirstOrThrow();
    return {
      chains: chains.map((c) => c.chain as string).sort(),
      unchained: Number(n),
      unchainedMaxSeq: maxSeq === null ? null : Number(maxSeq),
      unchainedNewest: maxAt === null ? null : new Date(Number(maxAt)),
    };
  }

  async searchAudit(query: AuditQuery): Promise<StoredAuditRecord[]> {
    const limit = checkLimit("searchAudit", query.limit ?? DEFAULT_LIST_LIMIT);
    let q = this.ctx.db
      .selectFrom("audit_log")
      .selectAll()
      .orderBy("seq", query.order ?? "desc")
      .limit(limit);
    if (query.principal !== undefined) q = q.where("principal", "=", query.principal);
    if (query.method !== undefined) q = q.where("method", "=", query.method);
    if (query.server !== undefined) q = q.where("server", "=", query.server);
    if (query.tool !== undefined) q = q.where("tool", "=", query.tool);
    if (query.decision !== undefined) q = q.where("decision", "=", query.decision);
    if (query.decisionId !== undefined) q = q.where("decision_id", "=", query.decisionId);
    if (query.taskId !== undefined) q = q.where("task_id", "=", query.taskId);
    if (query.since !== undefined) q = q.where("at", ">=", query.since.getTime());
    if (query.until !== undefined) q = q.where("at", "<", query.until.getTime());
    if (query.afterSeq !== undefined) q = q.where("seq", ">", query.afterSeq);
    if (query.beforeSeq !== undefined) q = q.where("seq", "<", query.beforeSeq);
    const parts = query.principalContains;
    if (parts !== undefined)
      q = q.where((eb) => eb.or(parts.map((p) => eb(sql`lower(principal)`, "like", containsPattern(p)))));
    if (query.reasonContains !== undefined)
      q = q.where(sql`lower(reason)`, "like", containsPattern(query.reasonContains));
    return (await q.execute()).map(rowToAudit);
  }

  async purgeUnchainedAudit(before: Date): Promise<number> {
    const res = await this.ctx.db
      .deleteFrom("audit_log")
      .where("chain", "is", null)
      .where("at", "<", before.getTime())
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
