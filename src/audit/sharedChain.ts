/**
 * A chain that many short-lived processes continue in turn: the operator CLI's, one per store
 * ({@link OPERATOR_CLI_CHAIN}), so that `portcullis audit verify` sees one chain of management
 * actions rather than one single-record chain per command.
 *
 * Each append reads the chain's tail, links its records after it, signs a checkpoint of the
 * new tail and commits records and checkpoint in one transaction. Two processes appending at
 * once cannot fork the chain: `audit_log` is unique on (chain, chain_seq) and
 * `audit_checkpoints` on (chain, chain_seq), so the second transaction to commit fails as a
 * whole, on SQLite and PostgreSQL alike; it then reads the new tail and links again. A commit
 * whose outcome was lost (the connection dropped after COMMIT) is recognised by its hash at
 * the tail. The chain is registered in the signed registry (src/audit/registry.ts) with its
 * first records; after retention purged every record, it continues from its signed anchor.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { AuditRecord, Store } from "../store/types.js";
import { GENESIS_HASH } from "./chain.js";
import { chainBatch } from "./chainBatch.js";
import type { CheckpointSigner } from "./checkpoints.js";
import { newRegistration } from "./registry.js";

/** The operator CLI's chain: every management command run against a store continues it. */
export const OPERATOR_CLI_CHAIN = "operator-cli";

/** Attempts before giving up when other writers keep moving the tail (contention, not faults). */
const MAX_ATTEMPTS = 200;

export interface SharedChainAppend {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  hash: string;
}

/** The chain's last record, or its signed anchor when retention purged them all, or null when it has neither. */
async function tailOf(
  store: Store,
  chain: string,
): Promise<{ seq: number; hash: string; registered: boolean }> {
  const tail = await store.auditChainTail(chain);
  if (tail !== null) return { seq: tail.chainSeq, hash: tail.hash, registered: true };
  const info = (await store.listAuditChains()).find((c) => c.chain === chain);
  return info === undefined
    ? { seq: 0, hash: GENESIS_HASH, registered: false }
    : { seq: info.anchorSeq, hash: info.anchorHash, registered: true };
}

/**
 * Appends `records` (in order) to `chain` with a signed checkpoint of its new tail, committed
 * together. Resolves once committed; rejects when the store refuses for another reason than
 * a concurrent append.
 */
export async function appendToSharedChain(
  store: Store,
  signer: CheckpointSigner,
  chain: string,
  records: readonly AuditRecord[],
  startedAt: Date = new Date(),
): Promise<SharedChainAppend | null> {
  if (records.length === 0) return null;
  const batch = records.map((entry) => ({ entry, refused: null }));
  const args = records.map(() => null);
  for (let attempt = 1; ; attempt++) {
    const tail = await tailOf(store, chain);
    const chained = chainBatch(chain, tail, batch, args);
    const registry = await store.auditRegistryTail();
    const checkpoint = signer.sign({
      chain,
      chainSeq: chained.seq,
      hash: chained.hash,
      count: chained.seq,
      at: new Date(),
      registry,
    });
    try {
      await store.appendAuditChain(
        chained.records,
        [checkpoint],
        tail.registered ? undefined : newRegistration(chain, startedAt, signer),
      );
      return { chain, firstSeq: tail.seq + 1, lastSeq: chained.seq, hash: chained.hash };
    } catch (err) {
      const now = await tailOf(store, chain);
      // Committed after all (the answer was lost): our last record is the tail.
      if (now.seq === chained.seq && now.hash === chained.hash) {
        return { chain, firstSeq: tail.seq + 1, lastSeq: chained.seq, hash: chained.hash };
      }
      // Another process appended first: link again after its records.
      if (now.seq === tail.seq && now.hash === tail.hash) throw err;
      if (attempt >= MAX_ATTEMPTS) throw err;
      await sleep(Math.floor(Math.random() * Math.min(50, 2 * attempt)));
    }
  }
}
