/**
 * The audit trail's records and the two repositories that store them: the log itself
 * (`audit_log`, hash-chained since migration 006) and the chains' registry, checkpoints,
 * signing keys and retention (migrations 006 and 008). Schema: ./schema.ts and
 * docs/storage-schema.md; the chain's rules: src/audit/chain.ts.
 */
import type { AuditLogTable } from "./schema.js";

/** One audit record: every authentication (and later authorization) decision. */
export interface AuditRecord {
  at: Date;
  environment: string;
  /** Who: principal id, or null when authentication failed before one was known. */
  principal: string | null;
  /** Authentication method: api_key, anonymous, … */
  method: string | null;
  credentialId: string | null;
  server: string | null;
  rpcMethod: string | null;
  tool: string | null;
  decision: "allow" | "deny" | "review";
  /** Precise reason (never shown to the client). */
  reason: string;
  latencyUs: number;
  /** Free-form extra facts, e.g. `{ keyEnvironment: "prod" }`. Never a secret. */
  detail: Record<string, unknown> | null;
  /** Policy decisions: the id the client was given, the rules that decided, the policy set's version. */
  decisionId?: string | null;
  ruleIds?: string[] | null;
  policyVersion?: string | null;
  /**
   * The call's arguments as received (tools/call `arguments`, prompts/get `arguments`).
   * Never stored as given: the AuditWriter stores the form `audit.arguments` asks for
   * (secrets masked and large values hashed by default; src/audit/redact.ts).
   */
  arguments?: unknown;
}

export interface StoredAuditRecord extends AuditRecord {
  seq: number;
  /** Hash chain (migration 006); null for records written before it. */
  chain?: string | null;
  chainSeq?: number | null;
  prevHash?: string | null;
  hash?: string | null;
  /** The stored (redacted) arguments, parsed; null when none were kept. */
  arguments?: unknown;
}

/** A record ready for the chain: redacted and hashed by the AuditWriter (src/audit/chain.ts). */
export interface ChainedAuditRecord extends Omit<AuditRecord, "arguments"> {
  chain: string;
  chainSeq: number;
  prevHash: string;
  hash: string;
  /** The redacted arguments as JSON text (what the hash covers), or null. */
  arguments: string | null;
}

/**
 * The chained columns of one `audit_log` row exactly as stored (snake_case, JSON as text,
 * instants as epoch ms): what src/audit/chain.ts hashes and `portcullis audit verify` checks.
 */
export type AuditChainRow = Omit<AuditLogTable, "seq" | "chain" | "chain_seq" | "prev_hash" | "hash"> & {
  seq: number;
  chain: string;
  chain_seq: number;
  prev_hash: string;
  hash: string;
};

/** One writer process's chain (table `audit_chains`). */
export interface AuditChainInfo {
  chain: string;
  startedAt: Date;
  host: string;
  pid: number;
  /** Retention: the checkpoint the oldest kept record links to (0 / genesis hash before any purge). */
  anchorSeq: number;
  anchorHash: string;
  /** Retention's signature over the anchor (migration 008); null before any purge or for older anchors. */
  anchorProof: AuditAnchorProof | null;
  /** The chain's entry in the signed registry (migration 008); null for chains opened before it. */
  registration: AuditChainRegistration | null;
}

/** One entry of the signed registry of chains (src/audit/registry.ts). */
export interface AuditChainRegistration {
  /** 1, 2, … across every chain of the store. */
  seq: number;
  prevHash: string;
  hash: string;
  /** Only on entry 1: what existed before the registry (JSON text), else null. */
  legacy: string | null;
  keyId: string;
  signature: string;
}

/** Retention's signed statement that it moved a chain's anchor (src/audit/retention.ts). */
export interface AuditAnchorProof {
  at: Date;
  keyId: string;
  signature: string;
}

/** What existed before the registry (migration 008), listed in registry entry 1. */
export interface AuditLegacyFacts {
  /** Chains opened before the registry, by id, with their anchors then. */
  chains: { chain: string; anchorSeq: number; anchorHash: string }[];
  /** Records without a chain (written before migration 006): how many, and the highest `seq`. */
  unchained: number;
  unchainedMaxSeq: number;
}

/**
 * A chain to register with its first records: the store calls `sign` inside the transaction,
 * with the registry's tail (serialised across writers) and, for entry 1, the legacy facts.
 */
export interface NewAuditChain {
  chain: string;
  startedAt: Date;
  host: string;
  pid: number;
  sign(link: { seq: number; prevHash: string; legacy: AuditLegacyFacts | null }): AuditChainRegistration;
}

/** A signed statement: `chain` had `count` records, the last (`chainSeq`) hashing to `hash`. */
export interface AuditCheckpoint {
  chain: string;
  chainSeq: number;
  hash: string;
  count: number;
  at: Date;
  keyId: string;
  /** Ed25519 over src/audit/checkpoints.ts `checkpointPayload`, base64url. */
  signature: string;
  /** The registry entry the writer saw when it signed (payload v2, migration 008); null in v1. */
  registry?: { seq: number; hash: string } | null;
}

export interface AuditSigningKeyRecord {
  /** First 16 hex characters of SHA-256 over the raw public key. */
  id: string;
  /** SPKI PEM. */
  publicKey: string;
  /** PKCS#8 PEM sealed with AES-256-GCM under a key derived from the server secret. */
  privateKeySealed: string;
  createdAt: Date;
}

/** Filters of `portcullis audit search|tail|export`; all optional, combined with AND. */
export interface AuditQuery {
  principal?: string;
  /** Exact `method` (api_key, oauth, sign_in, console, cli, …). */
  method?: string;
  server?: string;
  tool?: string;
  decision?: AuditRecord["decision"];
  decisionId?: string;
  /** Only records about this task (`detail.task`, indexed by migration 013). */
  taskId?: string;
  since?: Date;
  until?: Date;
  /** Only records with a store sequence number above this (tail -f, paged export). */
  afterSeq?: number;
  /** Only records with a store sequence number below this (the console's older pages). */
  beforeSeq?: number;
  /** Only records whose principal contains one of these, in any case (the console's "who"). */
  principalContains?: string[];
  /** Only records whose reason contains this, in any case. */
  reasonContains?: string;
  limit?: number;
  /** `desc` (newest first, the default) or `asc`. */
  order?: "asc" | "desc";
}

/** The records of `audit_log` (src/audit/writer.ts writes them, `portcullis audit` reads them). */
export interface AuditRepository {
  /** Inserts a batch of unchained audit records in one transaction. */
  appendAudit(records: AuditRecord[]): Promise<void>;
  /** Newest first. */
  listAudit(opts?: {
    limit?: number;
    credentialId?: string;
    decisionId?: string;
  }): Promise<StoredAuditRecord[]>;
  /**
   * Inserts records and checkpoints in one transaction (the commit a durable record waits for).
   * With `register`, the chain is first added to the signed registry in the same transaction
   * (a no-op when it is already there), so a registered chain always has records.
   */
  appendAuditChain(
    records: ChainedAuditRecord[],
    checkpoints: AuditCheckpoint[],
    register?: NewAuditChain,
  ): Promise<void>;
  /** The last stored record of a chain, or null when it has none. */
  auditChainTail(chain: string): Promise<{ chainSeq: number; hash: string } | null>;
  /** Rows of one chain with chain_seq > `afterChainSeq`, in chain order, at most `limit`. */
  readAuditChain(chain: string, afterChainSeq: number, limit: number): Promise<AuditChainRow[]>;
  /**
   * Chain ids found in audit_log (also those missing from audit_chains), and the unchained
   * records: how many, the highest `seq` and the newest `at` among them.
   */
  auditChainsInLog(): Promise<{
    chains: string[];
    unchained: number;
    unchainedMaxSeq: number | null;
    unchainedNewest: Date | null;
  }>;
  searchAudit(query: AuditQuery): Promise<StoredAuditRecord[]>;
  /** Deletes unchained records (written before migration 006) older than `before`. */
  purgeUnchainedAudit(before: Date): Promise<number>;
}

/** The tamper-evident trail's registry of chains, checkpoints, signing keys and retention (migrations 006, 008). */
export interface AuditChainRepository {
  listAuditChains(): Promise<AuditChainInfo[]>;
  /** The newest registry entry, or null when no chain is registered. */
  auditRegistryTail(): Promise<{ seq: number; hash: string } | null>;
  /** Checkpoints of one chain (or all), in chain order. */
  listAuditCheckpoints(chain?: string): Promise<AuditCheckpoint[]>;
  insertAuditSigningKey(key: AuditSigningKeyRecord): Promise<void>;
  /** Newest first. */
  listAuditSigningKeys(): Promise<AuditSigningKeyRecord[]>;
  /**
   * Retention, in one transaction: deletes the chain's records up to and including
   * `anchor.chainSeq` and its checkpoints before it, and makes that checkpoint the anchor
   * (with retention's signature over it). Only moves the anchor forward. Returns the number
   * of records deleted.
   */
  purgeAuditChain(
    chain: string,
    anchor: { chainSeq: number; hash: string; proof: AuditAnchorProof },
  ): Promise<number>;
}
