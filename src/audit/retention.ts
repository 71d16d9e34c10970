/**
 * Retention (`audit.retentionDays`): records older than N days are purged by whole
 * checkpointed ranges only. For each chain, the newest checkpoint signed before the cutoff
 * becomes the chain's new anchor; the records up to it and the checkpoints before it are
 * deleted in one transaction. The anchor checkpoint is kept, so `audit verify` still checks
 * that the oldest kept record links to a hash the gateway signed. Records newer than the last
 * such checkpoint are kept even when older than the cutoff.
 *
 * Moving an anchor is what deleting a chain's oldest records looks like, so retention signs
 * each anchor it sets ("chain C now starts after seq S, hash H", src/audit/checkpoints.ts
 * `anchorPayload`) and the run is recorded in the writer's own chain with the anchors it set:
 * `verify` accepts an anchor only with that signature.
 */
import type { Store } from "../store/types.js";
import { anchorPayload, type CheckpointSigner } from "./checkpoints.js";

export interface RetentionResult {
  records: number;
  chains: number;
  unchained: number;
  /** The anchors this run set, for the retention record. */
  anchors: { chain: string; seq: number; hash: string }[];
}

export async function purgeExpiredAudit(
  store: Store,
  retentionDays: number,
  signer: Pick<CheckpointSigner, "keyId" | "signBytes">,
  now = new Date(),
): Promise<RetentionResult> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  let records = 0;
  const anchors: RetentionResult["anchors"] = [];
  for (const chain of await store.listAuditChains()) {
    const anchor = (await store.listAuditCheckpoints(chain.chain))
      .filter((c) => c.at < cutoff && c.chainSeq > chain.anchorSeq)
      .at(-1);
    if (anchor === undefined) continue;
    const signed = { chain: chain.chain, chainSeq: anchor.chainSeq, hash: anchor.hash, at: now };
    const n = await store.purgeAuditChain(chain.chain, {
      chainSeq: anchor.chainSeq,
      hash: anchor.hash,
      proof: { at: now, keyId: signer.keyId, signature: signer.signBytes(anchorPayload(signed)) },
    });
    records += n;
    if (n > 0) anchors.push({ chain: chain.chain, seq: anchor.chainSeq, hash: anchor.hash });
  }
  const unchained = await store.purgeUnchainedAudit(cutoff);
  return { records: records + unchained, chains: anchors.length, unchained, anchors };
}
