/**
 * The whole database as Kysely sees it: one row type per table, one `Schema` over all of
 * them, used by every query in src/store/ and src/oauth/. docs/storage-schema.md explains
 * every column; src/store/migrations/ creates them (the numbers below name the migration
 * that added a table or column). Instants are integer epoch milliseconds on both dialects,
 * lists and objects are JSON text, so one schema and one mapping serve SQLite and PostgreSQL.
 *
 * `portcullis_rate_limits` (migration 010) is not listed: rate-limiter-flexible owns its
 * queries (src/store/rateLimitCounters.ts).
 */
import type { Generated } from "kysely";

/** One row per API key ever issued (001); never the secret, only its keyed hash. */
export interface ApiKeysTable {
  id: string;
  name: string;
  environment: string;
  hash: string;
  /** JSON array of scope patterns. */
  scopes: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  rotated_from: string | null;
  /** Migration 010; null for keys created before it. */
  created_by: string | null;
  created_by_name: string | null;
  last_used_at: number | null;
  use_count: number;
}

/** One row per decision, append-only (001; decision columns 005, chain columns 006). */
export interface AuditLogTable {
  seq: Generated<number>;
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
  /** JSON object or null. */
  detail: string | null;
  decision_id: string | null;
  policy_version: string | null;
  /** JSON array of rule ids, or null. */
  rule_ids: string | null;
  /** Hash chain (migration 006); null on records written before it. */
  chain: string | null;
  chain_seq: number | null;
  prev_hash: string | null;
  hash: string | null;
  /** Redacted arguments, JSON text, or null. */
  arguments: string | null;
  /**
   * Index (migration 013): the task the record is about, copied from `detail.task` when the
   * row is written (src/store/rows.ts); not hashed itself, checked against the hashed detail
   * by `audit verify`.
   */
  task_id: string | null;
}

/** One row per audit writer process (006); registry and anchor signatures from 008. */
export interface AuditChainsTable {
  chain: string;
  started_at: number;
  host: string;
  pid: number;
  anchor_seq: number;
  anchor_hash: string;
  /** Migration 008: the signed registry link and the anchor's signature (null before). */
  reg_seq: number | null;
  prev_reg_hash: string | null;
  reg_hash: string | null;
  reg_legacy: string | null;
  reg_key_id: string | null;
  reg_signature: string | null;
  anchor_at: number | null;
  anchor_key_id: string | null;
  anchor_signature: string | null;
}

/** Signed statements about a chain (006). */
export interface AuditCheckpointsTable {
  chain: string;
  chain_seq: number;
  hash: string;
  count: number;
  at: number;
  key_id: string;
  signature: string;
  /** Migration 008: the registry entry the checkpoint names (payload v2), null in v1. */
  registry_seq: number | null;
  registry_hash: string | null;
}

/** Checkpoint signing keys (006), the private half sealed under the server secret. */
export interface AuditSigningKeysTable {
  id: string;
  public_key: string;
  private_key_sealed: string;
  created_at: number;
}

/** Small key/value facts (001). */
export interface SettingsTable {
  key: string;
  value: string;
}

/** Change counters (001): `keys` (the change feed), `tool_pins` (004). */
export interface RevisionsTable {
  name: string;
  value: number;
}

/** The accepted definition of every tool a server listed (004). */
export interface ToolPinsTable {
  server: string;
  tool: string;
  /** `pinned` or `changed`. */
  status: string;
  first_seen_at: number;
  pinned_hash: string;
  /** Canonical JSON of the accepted definition. */
  pinned_definition: string;
  current_hash: string;
  /** Canonical JSON of the definition served last; null when it is the pinned one. */
  current_definition: string | null;
  changed_at: number | null;
  accepted_at: number | null;
  accepted_by: string | null;
}

/** Runtime review: one row per approval asked for (007, src/review/). */
export interface ApprovalsTable {
  id: string;
  status: string;
  environment: string;
  principal_id: string;
  principal_name: string;
  principal_method: string;
  credential_id: string | null;
  server: string;
  rpc_method: string;
  tool: string;
  arguments_hash: string;
  /** JSON text. */
  arguments_summary: string;
  decision_id: string | null;
  /** JSON array text. */
  rule_ids: string;
  policy_version: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  decided_via: string | null;
  reason: string | null;
  consumed_at: number | null;
}

/** The built-in authorization server's oidc-provider models (002, src/oauth/adapter.ts). */
export interface OAuthPayloadsTable {
  /** oidc-provider model name: AccessToken, AuthorizationCode, RefreshToken, Grant, Session, … */
  model: string;
  id: string;
  /** The model's payload, JSON text. */
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: number | null;
  consumed_at: number | null;
}

/** The authorization server's token signing keys (002, src/oauth/signingKeys.ts). */
export interface OAuthSigningKeysTable {
  kid: string;
  /** AES-256-GCM sealed private JWK. */
  jwk_encrypted: string;
  created_at: number;
  /** Set when rotated out: still published (verification only) during the overlap. */
  retired_at: number | null;
}

/** Local console users (002, src/oauth/users.ts). */
export interface OAuthUsersTable {
  id: string;
  username: string;
  /** `scrypt$N$r$p$salt$hash` (base64url parts). */
  password_hash: string;
  email: string | null;
  /** JSON array of group names. */
  groups: string;
  created_at: number;
  disabled_at: number | null;
}

/** Remembered consents (002, src/oauth/interactions.ts). */
export interface OAuthConsentsTable {
  account_id: string;
  client_id: string;
  grant_id: string;
  updated_at: number;
}

/** Operator-created clients for the client_credentials grant (003, src/oauth/machineClients.ts). */
export interface OAuthMachineClientsTable {
  client_id: string;
  name: string;
  /** `private_key_jwt` or `client_secret_basic`. */
  auth_method: string;
  /** client_secret_basic only: the secret AES-256-GCM sealed under a key derived from the server secret. */
  secret_sealed: string | null;
  /** private_key_jwt only: the client's public JWK Set, JSON text. */
  jwks: string | null;
  /** JSON array of gateway server names (their `/mcp/<name>` endpoints are the allowed resources). */
  servers: string;
  /** JSON array of OAuth scopes the client may be granted. */
  scopes: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  /** Who created it (migration 010): never the approver of its calls; null when unknown. */
  created_by: string | null;
  created_by_name: string | null;
}

/** Tasks: units of agent work their task tokens are bound to (011, src/tasks/). */
export interface TasksTable {
  id: string;
  owner_id: string;
  owner_kind: string;
  owner_method: string;
  owner_name: string;
  owner_credential_id: string | null;
  /** The built-in authorization server's grant of an OAuth owner, whose revocation ends the task's use. */
  owner_grant_id: string | null;
  /** RFC 8693 actor (nested for delegation chains), JSON text, or null. */
  actor_json: string | null;
  purpose: string;
  /** JSON array of `server` / `server:tool` grants. */
  grants_json: string;
  environment: string;
  created_at: number;
  expires_at: number;
  budget: number | null;
  calls_used: Generated<number>;
  ended_at: number | null;
  end_reason: string | null;
  ended_by: string | null;
  client_id: string | null;
}

/** Every table Kysely queries, by name. */
/** One row per redeemed JWT authorization grant (012): a keyed hash of issuer and jti, kept until the assertion expires. */
export interface OAuthAssertionReplayTable {
  key: string;
  /** The assertion's `exp`, epoch ms; the row is purged after it. */
  expires_at: number;
}

export interface Schema {
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  audit_chains: AuditChainsTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_signing_keys: AuditSigningKeysTable;
  settings: SettingsTable;
  revisions: RevisionsTable;
  tool_pins: ToolPinsTable;
  approvals: ApprovalsTable;
  tasks: TasksTable;
  oauth_payloads: OAuthPayloadsTable;
  oauth_signing_keys: OAuthSigningKeysTable;
  oauth_users: OAuthUsersTable;
  oauth_consents: OAuthConsentsTable;
  oauth_machine_clients: OAuthMachineClientsTable;
  oauth_assertion_replay: OAuthAssertionReplayTable;
}
