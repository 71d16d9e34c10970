/**
 * One group-commit batch made into chained records (src/audit/chain.ts): each record made
 * storable (src/audit/storable.ts), or replaced by its hash when the store refused it alone,
 * numbered after the chain's tail and linked to the record before it. Each record's stored
 * row is serialised once: the same canonical text is hashed and, should the store refuse the
 * record, is what its replacement names by SHA-256.
 */
import { chainedAuditToRow } from "../store/rows.js";
import type { AuditRecord, ChainedAuditRecord } from "../store/types.js";
import { canonicalAuditFields, canonicalRecordHash, type HashedAuditFields } from "./chain.js";
import { refusedRecord, storableRecord } from "./storable.js";

export interface BatchEntry {
  entry: AuditRecord;
  /** The store refused this record written alone, while it answered: store it as its hash. */
  refused: { row: string; error: string } | null;
}

export interface ChainedBatch {
  records: ChainedAuditRecord[];
  /** Each record's canonical row (what its hash covers), in batch order. */
  rows: string[];
  /** The chain's tail after the batch. */
  seq: number;
  hash: string;
}

export function chainBatch(
  chain: string,
  tail: { seq: number; hash: string },
  batch: readonly BatchEntry[],
  /** The redacted arguments of each entry (src/audit/redact.ts), in batch order. */
  args: readonly (string | null)[],
): ChainedBatch {
  let seq = tail.seq;
  let prev = tail.hash;
  const rows: string[] = new Array(batch.length);
  const records = batch.map((p, i): ChainedAuditRecord => {
    seq += 1;
    const entry =
      p.refused === null ? storableRecord(p.entry) : refusedRecord(p.entry, p.refused.row, p.refused.error);
    const record: ChainedAuditRecord = {
      ...entry,
      arguments: p.refused === null ? (args[i] ?? null) : null,
      chain,
      chainSeq: seq,
      prevHash: prev,
      hash: "",
    };
    const canonical = canonicalAuditFields(chainedAuditToRow(record) as HashedAuditFields);
    rows[i] = canonical;
    record.hash = canonicalRecordHash(prev, canonical);
    prev = record.hash;
    return record;
  });
  return { records, rows, seq, hash: prev };
}
