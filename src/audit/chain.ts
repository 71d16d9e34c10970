/**
 * The audit hash chain. Every record carries the hash of the previous record of its chain:
 *
 *   hash = hex(SHA-256(prev_hash ‖ "\n" ‖ JSON.stringify([chain, chain_seq, at, environment,
 *          principal, method, credential_id, server, rpc_method, tool, decision, reason,
 *          latency_us, detail, decision_id, policy_version, rule_ids, arguments])))
 *
 * over the values exactly as stored (JSON columns as their stored text, instants as epoch
 * milliseconds, null as null), so anyone can recompute it from a database dump
 * (docs/audit.md). The first record of a chain links to {@link GENESIS_HASH}. Each gateway
 * process writes its own chain (a fresh chain id per start, sequence from 1), so replicas
 * sharing one PostgreSQL store never contend for a lock on the hot path; the operator CLI's
 * commands continue one shared chain (./sharedChain.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { AuditChainRow } from "../store/types.js";

/** `prev_hash` of the first record of every chain. */
export const GENESIS_HASH = "0".repeat(64);

/** The stored columns that the hash covers (canonicalAuditFields fixes their order). */
export type HashedAuditFields = Omit<AuditChainRow, "seq" | "prev_hash" | "hash">;

/** The canonical serialisation of one record's stored fields. */
export function canonicalAuditFields(r: HashedAuditFields): string {
  return JSON.stringify([
    r.chain,
    Number(r.chain_seq),
    Number(r.at),
    r.environment,
    r.principal,
    r.method,
    r.credential_id,
    r.server,
    r.rpc_method,
    r.tool,
    r.decision,
    r.reason,
    Number(r.latency_us),
    r.detail,
    r.decision_id,
    r.policy_version,
    r.rule_ids,
    r.arguments,
  ]);
}

export function auditRecordHash(prevHash: string, fields: HashedAuditFields): string {
  return canonicalRecordHash(prevHash, canonicalAuditFields(fields));
}

/** The hash of a record whose canonical serialisation is already known (the writer keeps it). */
export function canonicalRecordHash(prevHash: string, canonical: string): string {
  return createHash("sha256").update(prevHash).update("\n").update(canonical).digest("hex");
}

/** A new chain id: sortable by start time, unique across replicas (`c` + base36 ms + 8 random bytes). */
export function newChainId(now = Date.now()): string {
  return `c${now.toString(36)}-${randomBytes(8).toString("hex")}`;
}
