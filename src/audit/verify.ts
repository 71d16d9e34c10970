/**
 * `portcullis audit verify`: walks every chain from its anchor and reports the first broken
 * link of each:
 *
 * - `edited`: a record's stored hash is not the hash of its fields (or was recomputed, and a
 *   later record or checkpoint no longer agrees);
 * - `deleted`: a gap in the chain sequence, or a record whose `prev_hash` is not the hash of
 *   the record before it;
 * - `truncated`: a checkpoint names a record that is missing (the tail was cut);
 * - `forged_checkpoint`: a checkpoint whose Ed25519 signature does not verify (or names an
 *   unknown key);
 * - `checkpoint_mismatch`: a checkpoint's hash differs from the record it names (the chain
 *   was rewritten from there on);
 * - `bad_anchor`: after retention, the oldest kept record must link to a signed checkpoint;
 * - `unregistered_chain`: records of a chain that `audit_chains` does not know.
 *
 * Records are read in pages, so memory stays flat for large logs. Only the public keys are
 * needed: this runs without the server secret.
 */
import type { AuditChainInfo, AuditCheckpoint, Store } from "../store/types.js";
import { auditRecordHash, GENESIS_HASH } from "./chain.js";
import { checkpointSignatureValid, publicKeys } from "./checkpoints.js";

export type ChainProblemKind =
  | "edited"
  | "deleted"
  | "truncated"
  | "forged_checkpoint"
  | "checkpoint_mismatch"
  | "bad_anchor"
  | "unregistered_chain";

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The chain sequence number where the chain breaks. */
  seq: number;
  detail: string;
}

export interface ChainReport {
  chain: string;
  ok: boolean;
  /** Records present and checked. */
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  checkpoints: number;
  lastCheckpointSeq: number | null;
  /** Records after the last checkpoint: a cut there would not be detectable until the next one. */
  uncheckpointed: number;
  anchorSeq: number;
  problem: ChainProblem | null;
}

export interface VerifyReport {
  ok: boolean;
  chains: ChainReport[];
  /** Records written before migration 006 (no chain): reported, not verifiable. */
  unchained: number;
}

const PAGE = 5000;

export async function verifyAuditLog(store: Store, opts: { chain?: string } = {}): Promise<VerifyReport> {
  const keys = publicKeys(await store.listAuditSigningKeys());
  const registered = await store.listAuditChains();
  const inLog = await store.auditChainsInLog();
  const known = new Set(registered.map((c) => c.chain));
  const chains: ChainReport[] = [];
  const wanted = (c: string) => opts.chain === undefined || opts.chain === c;
  for (const info of registered) {
    if (wanted(info.chain)) chains.push(await verifyChain(store, info, keys));
  }
  for (const chain of inLog.chains) {
    if (known.has(chain) || !wanted(chain)) continue;
    chains.push({
      chain,
      ok: false,
      records: 0,
      firstSeq: null,
      lastSeq: null,
      checkpoints: 0,
      lastCheckpointSeq: null,
      uncheckpointed: 0,
      anchorSeq: 0,
      problem: {
        kind: "unregistered_chain",
        seq: 0,
        detail: `records of chain ${chain}, which audit_chains does not list`,
      },
    });
  }
  return { ok: chains.every((c) => c.ok), chains, unchained: inLog.unchained };
}

async function verifyChain(
  store: Store,
  info: AuditChainInfo,
  keys: ReturnType<typeof publicKeys>,
): Promise<ChainReport> {
  const checkpoints = await store.listAuditCheckpoints(info.chain);
  const bySeq = new Map<number, AuditCheckpoint>(checkpoints.map((c) => [c.chainSeq, c]));
  const report: ChainReport = {
    chain: info.chain,
    ok: true,
    records: 0,
    firstSeq: null,
    lastSeq: null,
    checkpoints: checkpoints.length,
    lastCheckpointSeq: checkpoints.at(-1)?.chainSeq ?? null,
    uncheckpointed: 0,
    anchorSeq: info.anchorSeq,
    problem: null,
  };
  const broken = (kind: ChainProblemKind, seq: number, detail: string): ChainReport => ({
    ...report,
    ok: false,
    problem: { kind, seq, detail },
  });

  // Every checkpoint must carry a valid signature, whatever the records say.
  for (const c of checkpoints) {
    if (!checkpointSignatureValid(c, keys)) {
      return broken(
        "forged_checkpoint",
        c.chainSeq,
        keys.has(c.keyId)
          ? `checkpoint at seq ${c.chainSeq} has a bad signature`
          : `checkpoint at seq ${c.chainSeq} names unknown key ${c.keyId}`,
      );
    }
    if (c.count !== c.chainSeq) {
      return broken(
        "forged_checkpoint",
        c.chainSeq,
        `checkpoint at seq ${c.chainSeq} counts ${c.count} records`,
      );
    }
  }
  let prevHash = GENESIS_HASH;
  let expected = 1;
  if (info.anchorSeq > 0) {
    const anchor = bySeq.get(info.anchorSeq);
    if (anchor === undefined || anchor.hash !== info.anchorHash) {
      return broken(
        "bad_anchor",
        info.anchorSeq,
        `the chain starts after seq ${info.anchorSeq}, but no signed checkpoint vouches for that hash`,
      );
    }
    prevHash = info.anchorHash;
    expected = info.anchorSeq + 1;
  }
  let after = info.anchorSeq;
  for (;;) {
    const rows = await store.readAuditChain(info.chain, after, PAGE);
    for (const row of rows) {
      const seq = Number(row.chain_seq);
      if (seq !== expected) {
        return broken(
          "deleted",
          expected,
          seq === expected + 1
            ? `record ${expected} is missing`
            : `records ${expected} to ${seq - 1} are missing`,
        );
      }
      if (auditRecordHash(row.prev_hash, row) !== row.hash) {
        return broken(
          "edited",
          seq,
          `record ${seq} does not match its hash: it was changed after it was written`,
        );
      }
      if (row.prev_hash !== prevHash) {
        return broken(
          "deleted",
          seq,
          `record ${seq} does not link to record ${seq - 1}: a record was removed or replaced before it`,
        );
      }
      const cp = bySeq.get(seq);
      if (cp !== undefined && cp.hash !== row.hash) {
        return broken(
          "checkpoint_mismatch",
          seq,
          `record ${seq} differs from what the checkpoint signed: the chain was rewritten up to here`,
        );
      }
      report.records += 1;
      report.firstSeq ??= seq;
      report.lastSeq = seq;
      prevHash = row.hash;
      expected = seq + 1;
    }
    if (rows.length < PAGE) break;
    after = Number(rows.at(-1)?.chain_seq);
  }
  const last = report.lastSeq ?? info.anchorSeq;
  const beyond = checkpoints.find((c) => c.chainSeq > last);
  if (beyond !== undefined) {
    return broken(
      "truncated",
      last + 1,
      `a checkpoint names record ${beyond.chainSeq} but the chain ends at ${last}: records ${last + 1} to ${beyond.chainSeq} are missing`,
    );
  }
  report.uncheckpointed = last - (report.lastCheckpointSeq ?? info.anchorSeq);
  return report;
}
