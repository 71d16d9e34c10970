/**
 * The narrow storage interface every part of Portcullis talks to: `Store`, the composition
 * of one repository per concept (keys, audit, tool pins, approvals, settings, the OAuth
 * tables) and the change feed. The schema is ./schema.ts, documented in
 * docs/storage-schema.md; migrations are numbered under src/store/migrations/ and shared by
 * SQLite and PostgreSQL. The implementations are in src/store/repositories/.
 */
import type { Kysely, Transaction } from "kysely";
import type { AuditChainRepository, AuditRepository } from "./auditTypes.js";
import type { KeyWatch } from "./changeFeed.js";
import type { Schema } from "./schema.js";
import type { TaskRepository } from "./taskTypes.js";

export type {
  AuditAnchorProof,
  AuditChainInfo,
  AuditChainRegistration,
  AuditChainRepository,
  AuditChainRow,
  AuditCheckpoint,
  AuditLegacyFacts,
  AuditQuery,
  AuditRecord,
  AuditRepository,
  AuditSigningKeyRecord,
  ChainedAuditRecord,
  NewAuditChain,
  StoredAuditRecord,
} from "./auditTypes.js";
export type {
  NewTask,
  StoredTaskEndReason,
  StoredTaskOwner,
  TaskCallOutcome,
  TaskQuery,
  TaskRecord,
  TaskRepository,
} from "./taskTypes.js";

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

export interface KeyUsage {
  id: string;
  lastUsedAt: Date;
  count: number;
}

/** API keys (table `api_keys`); every mutation bumps the `keys` revision on the change feed. */
export interface KeyRepository {
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
}

/** Small key/value settings (e.g. the generated server secret's fingerprint). */
export interface SettingsRepository {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

/** Tool pins (migration 004). */
export interface ToolPinRepository {
  /** Ordered by server then tool. */
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
}

/**
 * The built-in authorization server's tables (migrations 002, 003). Its queries stay in
 * src/oauth/ (one module per model), over the store's one schema.
 */
export interface OAuthTables {
  /** The Kysely instance over the store's database, for src/oauth/ only. */
  oauthDatabase(): Kysely<Schema>;
}

export interface Store
  extends KeyRepository,
    AuditRepository,
    AuditChainRepository,
    ToolPinRepository,
    ApprovalRepository,
    SettingsRepository,
    TaskRepository,
    OAuthTables {
  readonly kind: "sqlite" | "postgres";
  /** Applies pending numbered migrations; idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /**
   * Runs `change` in one transaction with the keys revision bump and its announcement, for
   * credentials kept outside `api_keys` (the built-in authorization server's machine
   * clients): their revocation then reaches every watchKeys() callback like a key's.
   * `change` returns whether it changed anything; nothing is announced otherwise.
   */
  mutateCredentials(change: (trx: Transaction<Schema>) => Promise<boolean>): Promise<boolean>;

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

/** Approvals (migration 007); every state change is announced on the change feed. */
export interface ApprovalRepository {
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
