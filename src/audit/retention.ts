/**
 * Retention (`audit.retentionDays`): records older than N days are purged by whole
 * checkpointed ranges only. For each chain, the newest checkpoint signed before the cutoff
 * becomes the chain's new anchor; the records up to it and the checkpoints before it are
 * deleted in one transaction. The anchor checkpoint is kept, so `audit verify` still checks
 * that the oldest kept record links to a hash the gateway signed. Records newer than the last
 * such checkpoint are kept even when older than the cutoff.
 */
import type { Store } from "../store/types.js";

export interface RetentionResult {
  records: number;
  chains: number;
  unchained: number;
}

export async function purgeExpiredAudit(
  store: Store,
  retentionDays: number,
  now = new Date(),
): Promise<RetentionResult> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  let records = 0;
  let chains = 0;
  for (const chain of await store.listAuditChains()) {
    const anchor = (await store.listAuditCheckpoints(chain.chain))
      .filter((c) => c.at < cutoff && c.chainSeq > chain.anchorSeq)
      .at(-1);
    if (anchor === undefined) continue;
    const n = await store.purgeAuditChain(chain.chain, { chainSeq: anchor.chainSeq, hash: anchor.hash });
    records += n;
    if (n > 0) chains += 1;
  }
  const unchained = await store.purgeUnchainedAudit(cutoff);
  return { records: records + unchained, chains, unchained };
}
