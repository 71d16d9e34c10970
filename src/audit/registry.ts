/**
 * The signed registry of audit chains. Every gateway process writes its own chain
 * (src/audit/chain.ts) and the operator CLI one shared chain (src/audit/sharedChain.ts), so a chain deleted whole (records, checkpoints and
 * its `audit_chains` row) left no trace. Each chain is therefore registered, in the
 * transaction that stores its first records, as the next entry of one store-wide list:
 *
 *   reg_hash = hex(SHA-256(payload)),  payload = "portcullis-audit-chain/v1\n" +
 *              JSON.stringify([reg_seq, prev_reg_hash, chain, started_at_ms, host, pid, legacy])
 *
 * linked like records (`prev_reg_hash` of entry 1 is 64 zeros) and signed with the checkpoint
 * key (Ed25519, RFC 8032). Without the key an intruder can neither remove an entry (a hole in
 * `reg_seq` or a broken link) nor relink the rest. Checkpoints name the registry entry their
 * writer saw (payload v2), so removing the newest entries shows too once any later checkpoint
 * exists. Entry 1 lists, in `legacy`, what existed before the registry (chains with their
 * anchors, and the count and highest `seq` of unchained records).
 */
import { createHash, type KeyObject } from "node:crypto";
import { hostname } from "node:os";
import type {
  AuditChainInfo,
  AuditChainRegistration,
  AuditLegacyFacts,
  NewAuditChain,
} from "../store/types.js";
import { GENESIS_HASH } from "./chain.js";
import { type CheckpointSigner, signatureValid } from "./checkpoints.js";

interface RegistrationFields {
  seq: number;
  prevHash: string;
  chain: string;
  startedAt: Date;
  host: string;
  pid: number;
  legacy: string | null;
}

export function registrationPayload(r: RegistrationFields): Buffer {
  return Buffer.from(
    `portcullis-audit-chain/v1\n${JSON.stringify([r.seq, r.prevHash, r.chain, r.startedAt.getTime(), r.host, r.pid, r.legacy])}`,
    "utf8",
  );
}

export function registrationHash(r: RegistrationFields): string {
  return createHash("sha256").update(registrationPayload(r)).digest("hex");
}

/** This process's chain, ready to be registered with its first records. */
export function newRegistration(chain: string, startedAt: Date, signer: CheckpointSigner): NewAuditChain {
  const host = hostname();
  const pid = process.pid;
  return {
    chain,
    startedAt,
    host,
    pid,
    sign({ seq, prevHash, legacy }): AuditChainRegistration {
      const fields = {
        seq,
        prevHash,
        chain,
        startedAt,
        host,
        pid,
        legacy: legacy === null ? null : JSON.stringify(legacy),
      };
      return {
        seq,
        prevHash,
        hash: registrationHash(fields),
        legacy: fields.legacy,
        keyId: signer.keyId,
        signature: signer.signBytes(registrationPayload(fields)),
      };
    },
  };
}

export type RegistryProblemKind = "deleted_chain" | "forged_registration" | "unregistered_chain";

export interface RegistryProblem {
  kind: RegistryProblemKind;
  chain: string | null;
  detail: string;
}

export interface RegistryCheck {
  problems: RegistryProblem[];
  /** reg_hash by reg_seq, for checkpoints that name an entry. */
  hashes: Map<number, string>;
  /** Entry 1, when the registry has one and it verified. */
  genesis: { startedAt: Date; legacy: AuditLegacyFacts } | null;
  /** Chains the registry vouches for: registered, or listed in entry 1 as older. */
  legacyChains: Map<string, { anchorSeq: number; anchorHash: string }>;
}

function parseLegacy(text: string | null): AuditLegacyFacts {
  const empty: AuditLegacyFacts = { chains: [], unchained: 0, unchainedMaxSeq: 0 };
  if (text === null) return empty;
  const v = JSON.parse(text) as Partial<AuditLegacyFacts>;
  return { ...empty, ...v };
}

/**
 * Checks the registry over every `audit_chains` row: entries numbered 1, 2, … without a hole,
 * each linking to the one before, hashing to its stored hash and signed by a trusted key;
 * every chain either registered or listed in entry 1; every chain listed there still present.
 */
export function checkRegistry(
  chains: readonly AuditChainInfo[],
  keys: ReadonlyMap<string, KeyObject>,
): RegistryCheck {
  const problems: RegistryProblem[] = [];
  const hashes = new Map<number, string>();
  const registered = chains
    .filter((c) => c.registration !== null)
    .sort((a, b) => (a.registration?.seq ?? 0) - (b.registration?.seq ?? 0));
  let genesis: RegistryCheck["genesis"] = null;
  let expected = 1;
  let prevHash = GENESIS_HASH;
  for (const info of registered) {
    const reg = info.registration as AuditChainRegistration;
    const fields = { ...info, seq: reg.seq, prevHash: reg.prevHash, legacy: reg.legacy };
    const hash = registrationHash(fields);
    if (reg.seq !== expected) {
      problems.push({
        kind: "deleted_chain",
        chain: null,
        detail:
          reg.seq === expected + 1
            ? `registry entry ${expected} is missing: a whole chain was deleted`
            : `registry entries ${expected} to ${reg.seq - 1} are missing: whole chains were deleted`,
      });
    } else if (reg.prevHash !== prevHash) {
      problems.push({
        kind: "deleted_chain",
        chain: info.chain,
        detail: `registry entry ${reg.seq} does not link to entry ${reg.seq - 1}: a chain was removed or replaced before it`,
      });
    }
    if (hash !== reg.hash || !signatureValid(registrationPayload(fields), reg.keyId, reg.signature, keys)) {
      problems.push({
        kind: "forged_registration",
        chain: info.chain,
        detail: keys.has(reg.keyId)
          ? `registry entry ${reg.seq} was changed after it was signed`
          : `registry entry ${reg.seq} is signed by key ${reg.keyId}, which is not a trusted key`,
      });
    } else if (reg.seq === 1) {
      genesis = { startedAt: info.startedAt, legacy: parseLegacy(reg.legacy) };
    }
    hashes.set(reg.seq, reg.hash);
    expected = reg.seq + 1;
    prevHash = reg.hash;
  }
  const legacyChains = new Map(
    (genesis?.legacy.chains ?? []).map((c) => [
      c.chain,
      { anchorSeq: c.anchorSeq, anchorHash: c.anchorHash },
    ]),
  );
  const present = new Set(chains.map((c) => c.chain));
  for (const c of legacyChains.keys()) {
    if (!present.has(c))
      problems.push({
        kind: "deleted_chain",
        chain: c,
        detail: `chain ${c}, listed in registry entry 1 as older than the registry, was deleted`,
      });
  }
  // Before any registration (a store not written since migration 008) older chains stand alone.
  if (registered.length > 0) {
    for (const info of chains) {
      if (info.registration === null && !legacyChains.has(info.chain))
        problems.push({
          kind: "unregistered_chain",
          chain: info.chain,
          detail: `chain ${info.chain} is in neither the signed registry nor its list of older chains`,
        });
    }
  }
  return { problems, hashes, genesis, legacyChains };
}
