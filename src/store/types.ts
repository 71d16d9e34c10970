/**
 * The narrow storage interface every part of Portcullis talks to.
 * The schema itself is documented in docs/storage-schema.md; migrations are numbered
 * under src/store/migrations/ and shared by SQLite and PostgreSQL.
 */
import type { Transaction } from "kysely";
import type { KeyWatch } from "./changeFeed.js";

/** An API key as stored: never the secret, only its keyed hash. */
export interface ApiKeyRecord {
  /** The lookup id embedded in the key string (12 base62 characters). */
  id: string;
  name: string;
  /** Environment the key was minted for (dev, test, prod or a custom name). */
  environment: string;
  /** HMAC-SHA-256(server secret, full key string), hex. */
  hash: string;
  /** `server` or `server:tool` patterns (`*` matches any run of characters in the tool part). */
  scopes: string[];
  createdAt: Date;
  expiresAt: Date;
  /** Set when revoked; a key is refused from this instant on. */
  revokedAt: Date | null;
  /** Id of the key this one replaced by rotation, if any. */
  rotatedFrom: string | null;
  /** Who created (or rotated into) this key, who therefore saw its secret; null when unknown. */
  createdBy: KeyOwner | null;
  lastUsedAt: Date | null;
  useCount: number;
}

/** The person behind a key's creation: never its approver (src/review/separationOfDuties.ts). */
export interface KeyOwner {
  /** `operator:<OS account>` (CLI) or `oauth:<issuer>#<sub>` (console). */
  principal: string;
  /** Their name: the OS account or the console username. */
  name: string;
}

export type NewApiKey = Omit<ApiKeyRecord, "revokedAt" | "lastUsedAt" | "useCount">;

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
export interface AuditChainRow {
  seq: number;
  chain: string;
  chain_seq: number;
  prev_hash: string;
  hash: string;
  at: number;
  environment: string;
  principal: string | null;
  method: string | null;
  credential_id: string | null;
  server: string | null;
  rpc_method: string | null;
  tool: string | null;
  decision: string;
  reason: string;
  latency_us: number;
  detail: string | null;
  decision_id: string | null;
  policy_version: string | null;
  rule_ids: string | null;
  arguments: string | null;
}

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
  server?: string;
  tool?: string;
  decision?: AuditRecord["decision"];
  decisionId?: string;
  since?: Date;
  until?: Date;
  /** Only records with a store sequence number above this (tail -f, paged export). */
  afterSeq?: number;
  limit?: number;
  /** `desc` (newest first, the default) or `asc`. */
  order?: "asc" | "desc";
}

/** The tamper-evident audit trail's storage (migration 006). */
export interface AuditChainStore {
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
  listAuditChains(): Promise<AuditChainInfo[]>;
  /** The newest registry entry, or null when no chain is registered. */
  auditRegistryTail(): Promise<{ seq: number; hash: string } | null>;
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
  /** Checkpoints of one chain (or all), in chain order. */
  listAuditCheckpoints(chain?: string): Promise<AuditCheckpoint[]>;
  insertAuditSigningKey(key: AuditSigningKeyRecord): Promise<void>;
  /** Newest first. */
  listAuditSigningKeys(): Promise<AuditSigningKeyRecord[]>;
  searchAudit(query: AuditQuery): Promise<StoredAuditRecord[]>;
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
  /** Deletes unchained records (written before migration 006) older than `before`. */
  purgeUnchainedAudit(before: Date): Promise<number>;
}

export interface KeyUsage {
  id: string;
  lastUsedAt: Date;
  count: number;
}

export interface Store extends ApprovalStore, AuditChainStore {
  readonly kind: "sqlite" | "postgres";
  /** Applies pending numbered migrations; idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  insertKey(key: NewApiKey): Promise<void>;
  getKey(id: string): Promise<ApiKeyRecord | undefined>;
  listKeys(opts?: { includeRevoked?: boolean }): Promise<ApiKeyRecord[]>;
  /** Sets revoked_at (only if not already revoked); returns false when the key is unknown. */
  revokeKey(id: string, at: Date): Promise<boolean>;
  /** Sets a new expiry (used by rotation to end the old key's overlap window). */
  setKeyExpiry(id: string, expiresAt: Date): Promise<void>;
  /** Adds usage counts and moves last_used_at forward (never backward). One transaction. */
  recordKeyUsage(usage: KeyUsage[]): Promise<void>;
  /** A counter bumped by every key mutation, so caches know when to reload. */
  keysRevision(): Promise<number>;
  /**
   * Runs `change` in one transaction with the keys revision bump and its announcement, for
   * credentials kept outside `api_keys` (the built-in authorization server's machine
   * clients): their revocation then reaches every watchKeys() callback like a key's.
   * `change` returns whether it changed anything; nothing is announced otherwise.
   */
  mutateCredentials<DB>(change: (trx: Transaction<DB>) => Promise<boolean>): Promise<boolean>;

  /** Inserts a batch of audit records in one transaction. */
  appendAudit(records: AuditRecord[]): Promise<void>;
  /** Newest first. */
  listAudit(opts?: {
    limit?: number;
    credentialId?: string;
    decisionId?: string;
  }): Promise<StoredAuditRecord[]>;

  /** Small key/value settings (e.g. the generated server secret's fingerprint). */
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;

  /** Tool pins (migration 004), ordered by server then tool. */
  listToolPins(opts?: { server?: string; status?: ToolPinStatus }): Promise<ToolPinRecord[]>;
  getToolPin(server: string, tool: string): Promise<ToolPinRecord | undefined>;
  /** Bumped by every tool-pin write: a cache whose revision has not moved need not reload. */
  toolPinsRevision(): Promise<number>;
  /**
   * Applies tool sightings in order, in one transaction: an unknown tool is pinned to the
   * sighted definition; a definition different from the one last recorded becomes the
   * current one and marks the tool `changed` (the pin is kept until accepted). Any update
   * of an existing pin is announced on the change feed (watchKeys) in the same transaction.
   * Returns the resulting record of every sighted tool.
   */
  recordToolSightings(sightings: ToolSighting[]): Promise<ToolPinRecord[]>;
  /**
   * Makes each changed tool's current definition its pin, in one transaction, announced on
   * the change feed when anything was accepted. One outcome per request, in order.
   */
  acceptToolPins(
    requests: ToolAcceptRequest[],
    opts: { at: Date; by: string | null },
  ): Promise<ToolAcceptOutcome[]>;

  /**
   * Subscribes to the store's one change feed (./changeFeed.ts): `onChange` fires when keys,
   * credentials, tool pins or approvals changed anywhere (revocation fan-out). SQLite: one
   * data_version poller per process; PostgreSQL: one LISTEN connection per process, and
   * `healthy()` turns false while it is lost, so the gateway fails closed.
   */
  watchKeys(onChange: () => void): KeyWatch;
}

export type { KeyWatch };

/** `pinned`: the server serves the accepted definition; `changed`: it serves another one. */
export type ToolPinStatus = "pinned" | "changed";

/** The hashed part of an MCP tool definition: name, title, description, schemas, annotations. */
export type ToolDefinition = Readonly<Record<string, unknown>>;

/** One tool of one server, as pinned (migration 004, table `tool_pins`). */
export interface ToolPinRecord {
  server: string;
  tool: string;
  status: ToolPinStatus;
  firstSeenAt: Date;
  /** SHA-256 (hex) of the accepted definition's canonical JSON. */
  pinnedHash: string;
  pinnedDefinition: ToolDefinition;
  /** The definition the server served last; the pinned one unless the status is `changed`. */
  currentHash: string;
  currentDefinition: ToolDefinition;
  /** Last time the server served a definition that differed from the one recorded before. */
  changedAt: Date | null;
  /** Last acceptance by an operator; null while the pin is the first sighting. */
  acceptedAt: Date | null;
  acceptedBy: string | null;
}

/** A server listed a tool with this definition. */
export interface ToolSighting {
  server: string;
  tool: string;
  /** SHA-256 (hex) of `definition`. */
  hash: string;
  /** Canonical JSON (sorted keys) of the definition. */
  definition: string;
  at: Date;
}

export interface ToolAcceptRequest {
  server: string;
  tool: string;
  /** Accept only if the current definition still has this hash (what the operator reviewed). */
  expectedHash?: string | undefined;
}

export interface ToolAcceptOutcome {
  server: string;
  tool: string;
  /** `hash_mismatch`: the server changed the tool again after the operator's review. */
  outcome: "accepted" | "already_pinned" | "unknown" | "hash_mismatch";
  /** The pin before this call (null when the tool is unknown). */
  previousHash: string | null;
  /** The record after this call (null when the tool is unknown). */
  record: ToolPinRecord | null;
}

/** Runtime review (migration 007): the life of one approval. */
export type ApprovalStatus = "pending" | "approved" | "denied" | "expired" | "consumed";
/** Where an approver acted. */
export type ApprovalChannel = "console" | "cli" | "webhook";

/** One approval, bound to the exact call it was asked for (src/review/). */
export interface ApprovalRecord {
  /** `apr_` + 16 base62 characters; shown to the caller and the approver. */
  id: string;
  status: ApprovalStatus;
  environment: string;
  /** The caller: principal id (the binding), name and authentication method (for approvers). */
  principalId: string;
  principalName: string;
  principalMethod: string;
  credentialId: string | null;
  server: string;
  rpcMethod: string;
  /** Tool or prompt name, or resource URI. */
  tool: string;
  /** SHA-256 (hex) of the canonical JSON of the call's arguments. */
  argumentsHash: string;
  /** What an approver is shown: secrets masked, large values hashed. */
  argumentsSummary: Record<string, unknown>;
  /** The policy decision that asked for review. */
  decisionId: string | null;
  ruleIds: string[];
  policyVersion: string | null;
  createdAt: Date;
  /** Pending: decided by then or expired. Approved: consumed by then or unusable. */
  expiresAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  decidedVia: ApprovalChannel | null;
  /** The approver's reason (a denial's explanation). */
  reason: string | null;
  consumedAt: Date | null;
}

export type NewApproval = Omit<
  ApprovalRecord,
  "status" | "decidedAt" | "decidedBy" | "decidedVia" | "reason" | "consumedAt"
>;

export interface ApprovalDecision {
  decision: "approved" | "denied";
  by: string;
  via: ApprovalChannel;
  at: Date;
  reason: string | null;
  /** Approved only: the consumption deadline (never earlier than the pending deadline). */
  expiresAt?: Date;
}

/** The one store write a decision makes; `not_pending` covers decided, consumed and expired. */
export interface ApprovalDecisionOutcome {
  outcome: "decided" | "unknown" | "not_pending";
  record: ApprovalRecord | null;
}

/** Approval methods of the Store (migration 007); every state change is announced on the change feed. */
export interface ApprovalStore {
  insertApproval(approval: NewApproval): Promise<void>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** Newest first. */
  listApprovals(opts?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalRecord[]>;
  /** pending → approved | denied, only while pending and unexpired at `d.at`. */
  decideApproval(id: string, d: ApprovalDecision): Promise<ApprovalDecisionOutcome>;
  /** approved → consumed, only while unexpired at `at`: true for exactly one caller. */
  consumeApproval(id: string, at: Date): Promise<boolean>;
  /** pending → expired once past its deadline at `at`: true for the caller that expired it. */
  expireApproval(id: string, at: Date): Promise<boolean>;
  /** How many approvals of a principal are pending and unexpired at `at`, and the earliest deadline. */
  pendingApprovalsOf(principalId: string, at: Date): Promise<{ count: number; nextExpiry: Date | null }>;
}
