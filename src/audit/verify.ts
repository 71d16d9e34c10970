/**
 * `portcullis audit verify`: walks every chain from its anchor and reports the first broken
 * link of each:
 *
 * - `edited`: a record's stored hash is not the hash of its fields (or was recomputed, and a
 *   later record or checkpoint no longer agrees);
 * - `deleted`: a gap in the chain sequence, a record whose `prev_hash` is not the hash of
 *   the record before it, or a registered chain left with no records;
 * - `truncated`: a checkpoint names a record that is missing (the tail was cut);
 * - `forged_checkpoint`: a checkpoint whose Ed25519 signature does not verify under a trusted
 *   key (src/audit/trust.ts: keys pinned outside the store, never merely those it holds);
 * - `checkpoint_mismatch`: a checkpoint's hash differs from the record it names (the chain
 *   was rewritten from there on);
 * - `bad_anchor`: after retention, the oldest kept record must link to a signed checkpoint,
 *   and the anchor itself must carry retention's signature;
 * - `unregistered_chain`: records of a chain that the signed registry does not know.
 *
 * and, for the store as a whole (src/audit/registry.ts): `deleted_chain` (a hole in the signed
 * registry of chains, or a checkpoint naming a registry entry that is gone),
 * `forged_registration`, and `unchained_records` (records outside any chain that are not the
 * ones that existed before the registry: inserted later); with `--checkpoints`, every
 * checkpoint the gateway logged must still be backed by the store
 * (src/audit/loggedCheckpoints.ts).
 *
 * Records are read in pages, so memory stays flat for large logs. Only the public keys are
 * needed: this runs without the server secret.
 */
import type { KeyObject } from "node:crypto";
import { taskIdIndexOfText } from "../store/rows.js";
import type { AuditChainInfo, AuditCheckpoint, Store } from "../store/types.js";
import { auditRecordHash, GENESIS_HASH } from "./chain.js";
import { anchorPayload, checkpointSignatureValid, signatureValid } from "./checkpoints.js";
import { compareLoggedCheckpoints, type LoggedCheckpointProblem } from "./loggedCheckpoints.js";
import { checkRegistry, type RegistryCheck, type RegistryProblemKind } from "./registry.js";
import { type KeyTrust, storeTrust } from "./trust.js";

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

/** A problem of the store as a whole rather than of one chain. */
export interface LogProblem {
  kind: RegistryProblemKind | LoggedCheckpointProblem["kind"] | "unchained_records";
  chain: string | null;
  detail: string;
}

export interface VerifyReport {
  /** Every chain intact, the registry whole, no unchained record added. */
  ok: boolean;
  /** Which keys were trusted and why (src/audit/trust.ts). */
  trust: { source: KeyTrust["source"]; keys: string[]; untrusted: string[] };
  chains: ChainReport[];
  problems: LogProblem[];
  /** Checkpoints from the gateway's log compared with the store (`--checkpoints`). */
  loggedCheckpoints: number;
  /** Records written before migration 006 (no chain): reported, not verifiable. */
  unchained: number;
}

const PAGE = 5000;

export async function verifyAuditLog(
  store: Store,
  opts: {
    chain?: string;
    trust?: KeyTrust;
    /** Checkpoints copied from the gateway's log, to compare with the store. */
    logged?: readonly AuditCheckpoint[];
  } = {},
): Promise<VerifyReport> {
  const trust = opts.trust ?? storeTrust(await store.listAuditSigningKeys());
  const keys = trust.keys;
  const registered = await store.listAuditChains();
  const inLog = await store.auditChainsInLog();
  const registry = checkRegistry(registered, keys);
  const problems: LogProblem[] = [...registry.problems];
  const known = new Set(registered.map((c) => c.chain));
  const chains: ChainReport[] = [];
  const wanted = (c: string) => opts.chain === undefined || opts.chain === c;
  for (const info of registered) {
    if (wanted(info.chain)) chains.push(await verifyChain(store, info, keys, registry, problems));
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
  problems.push(...unchainedProblems(inLog, registry, registered));
  if (opts.logged !== undefined) {
    const logged = opts.logged.filter((c) => wanted(c.chain));
    problems.push(...(await compareLoggedCheckpoints(store, logged, keys)));
  }
  return {
    ok: chains.every((c) => c.ok) && problems.length === 0,
    trust: { source: trust.source, keys: [...keys.keys()], untrusted: trust.untrusted },
    chains,
    problems,
    loggedCheckpoints: opts.logged?.length ?? 0,
    unchained: inLog.unchained,
  };
}

/**
 * Records outside any chain are the ones written before migration 006, and nothing else: none
 * dated at or after the chains began, none beyond the count and highest `seq` that registry
 * entry 1 signed. Without a registry yet, the oldest chain marks the beginning.
 */
function unchainedProblems(
  inLog: Awaited<ReturnType<Store["auditChainsInLog"]>>,
  registry: RegistryCheck,
  chains: readonly AuditChainInfo[],
): LogProblem[] {
  if (inLog.unchained === 0) return [];
  const starts = chains.map((c) => c.startedAt.getTime());
  if (registry.genesis !== null) starts.push(registry.genesis.startedAt.getTime());
  const problems: LogProblem[] = [];
  const problem = (detail: string) => problems.push({ kind: "unchained_records", chain: null, detail });
  if (starts.length > 0 && inLog.unchainedNewest !== null) {
    const since = Math.min(...starts);
    if (inLog.unchainedNewest.getTime() >= since)
      problem(
        `unchained records dated up to ${inLog.unchainedNewest.toISOString()}, after the hash chain began (${new Date(since).toISOString()}): inserted outside the audit writer`,
      );
  }
  const legacy = registry.genesis?.legacy;
  if (legacy !== undefined) {
    if (inLog.unchained > legacy.unchained)
      problem(
        `${inLog.unchained} unchained records, but only ${legacy.unchained} existed when the registry began`,
      );
    else if ((inLog.unchainedMaxSeq ?? 0) > legacy.unchainedMaxSeq)
      problem(
        `an unchained record has seq ${inLog.unchainedMaxSeq}, above the highest (${legacy.unchainedMaxSeq}) when the registry began`,
      );
  }
  return problems;
}

async function verifyChain(
  store: Store,
  info: AuditChainInfo,
  keys: ReadonlyMap<string, KeyObject>,
  registry: RegistryCheck,
  problems: LogProblem[],
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
          : `checkpoint at seq ${c.chainSeq} is signed by key ${c.keyId}, which is not a trusted key`,
      );
    }
    if (c.count !== c.chainSeq) {
      return broken(
        "forged_checkpoint",
        c.chainSeq,
        `checkpoint at seq ${c.chainSeq} counts ${c.count} records`,
      );
    }
    // The registry entry the writer saw when it signed must still be there, unchanged (reported
    // once per chain: its later checkpoints saw the same or later entries).
    const seen = c.registry;
    if (
      seen != null &&
      registry.hashes.get(seen.seq) !== seen.hash &&
      !problems.some((p) => p.kind === "deleted_chain" && p.chain === info.chain)
    ) {
      problems.push({
        kind: "deleted_chain",
        chain: info.chain,
        detail: `checkpoint ${info.chain}@${c.chainSeq} saw registry entry ${seen.seq}, which is gone or changed: chains registered by then were deleted`,
      });
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
    if (!anchorSigned(info, keys, registry)) {
      return broken(
        "bad_anchor",
        info.anchorSeq,
        `the chain starts after seq ${info.anchorSeq}, but no retention run signed that anchor: records 1 to ${info.anchorSeq} were deleted by hand`,
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
      // The task index is not hashed: it must agree with the hashed detail it was copied from,
      // or a record could be hidden from (or slipped into) a task's history unseen.
      if ((row.task_id ?? null) !== taskIdIndexOfText(row.detail)) {
        return broken(
          "edited",
          seq,
          `record ${seq}'s task index (task_id) does not match its detail: it was changed after it was written`,
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
  // A chain is registered with its first records, and retention keeps its anchor: a registered
  // chain with neither lost them all.
  if (info.registration !== null && report.records === 0 && info.anchorSeq === 0) {
    return broken("deleted", 1, "the chain is registered but has no records: they were deleted");
  }
  report.uncheckpointed = last - (report.lastCheckpointSeq ?? info.anchorSeq);
  return report;
}

/** Retention signed the anchor, or registry entry 1 listed it as set before anchors were signed. */
function anchorSigned(
  info: AuditChainInfo,
  keys: ReadonlyMap<string, KeyObject>,
  registry: RegistryCheck,
): boolean {
  const proof = info.anchorProof;
  if (proof !== null) {
    const payload = anchorPayload({
      chain: info.chain,
      chainSeq: info.anchorSeq,
      hash: info.anchorHash,
      at: proof.at,
    });
    return signatureValid(payload, proof.keyId, proof.signature, keys);
  }
  const legacy = registry.legacyChains.get(info.chain);
  return legacy?.anchorSeq === info.anchorSeq && legacy.anchorHash === info.anchorHash;
}
