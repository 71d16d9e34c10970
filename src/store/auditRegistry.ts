/**
 * Registering an audit chain in the signed registry (migration 008, src/audit/registry.ts),
 * inside the transaction that stores the chain's first records. Writers on other processes
 * (replicas, CLI commands) register concurrently, so the registry's tail is read under a
 * lock: PostgreSQL takes a transaction-scoped advisory lock; SQLite already holds its single
 * write lock because the records were inserted first.
 */
import { type Kysely, sql, type Transaction } from "kysely";
import type { StoreDialect } from "./migrations/index.js";
import type { Schema } from "./schema.js";
import type { AuditLegacyFacts, NewAuditChain } from "./types.js";

/** pg_advisory_xact_lock key of the registry ("pcl-reg" as an integer). */
const REGISTRY_LOCK = 0x70636c726567;

/** What existed before the registry: legacy chains with their anchors, unchained records. */
async function legacyFacts(trx: Kysely<Schema>): Promise<AuditLegacyFacts> {
  const chains = await trx
    .selectFrom("audit_chains")
    .select(["chain", "anchor_seq", "anchor_hash"])
    .where("reg_seq", "is", null)
    .orderBy("chain")
    .execute();
  const unchained = await trx
    .selectFrom("audit_log")
    .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.max("seq").as("max")])
    .where("chain", "is", null)
    .executeTakeFirstOrThrow();
  return {
    chains: chains.map((c) => ({
      chain: c.chain,
      anchorSeq: Number(c.anchor_seq),
      anchorHash: c.anchor_hash,
    })),
    unchained: Number(unchained.n),
    unchainedMaxSeq: Number(unchained.max ?? 0),
  };
}

/** Adds `chain` to the registry unless it is there already (a retried, ambiguous commit). */
export async function registerAuditChain(
  trx: Transaction<Schema>,
  dialect: StoreDialect,
  chain: NewAuditChain,
): Promise<void> {
  if (dialect === "postgres") await sql`SELECT pg_advisory_xact_lock(${REGISTRY_LOCK})`.execute(trx);
  const existing = await trx
    .selectFrom("audit_chains")
    .select("chain")
    .where("chain", "=", chain.chain)
    .executeTakeFirst();
  if (existing !== undefined) return;
  const tail = await registryTail(trx);
  const entry = chain.sign({
    seq: (tail?.seq ?? 0) + 1,
    prevHash: tail?.hash ?? "0".repeat(64),
    legacy: tail === null ? await legacyFacts(trx) : null,
  });
  await trx
    .insertInto("audit_chains")
    .values({
      chain: chain.chain,
      started_at: chain.startedAt.getTime(),
      host: chain.host,
      pid: chain.pid,
      anchor_seq: 0,
      anchor_hash: "0".repeat(64),
      reg_seq: entry.seq,
      prev_reg_hash: entry.prevHash,
      reg_hash: entry.hash,
      reg_legacy: entry.legacy,
      reg_key_id: entry.keyId,
      reg_signature: entry.signature,
      anchor_at: null,
      anchor_key_id: null,
      anchor_signature: null,
    })
    .execute();
}

/** The newest registry entry, or null when no chain is registered. */
export async function registryTail(db: Kysely<Schema>): Promise<{ seq: number; hash: string } | null> {
  const row = await db
    .selectFrom("audit_chains")
    .select(["reg_seq", "reg_hash"])
    .where("reg_seq", "is not", null)
    .orderBy("reg_seq", "desc")
    .limit(1)
    .executeTakeFirst();
  return row?.reg_seq == null || row.reg_hash === null
    ? null
    : { seq: Number(row.reg_seq), hash: row.reg_hash };
}
