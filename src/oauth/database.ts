/**
 * The authorization server's tables (migration 002_oauth) as Kysely sees them, and access
 * to the store's Kysely instance so the AS shares the gateway's database (SQLite or
 * PostgreSQL) without widening the `Store` interface. Instants are epoch milliseconds,
 * structured values JSON text, as in src/store/rows.ts.
 */
import type { Kysely } from "kysely";
import type { Store } from "../store/types.js";

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

export interface OAuthSigningKeysTable {
  kid: string;
  /** AES-256-GCM sealed private JWK (see ./signingKeys.ts). */
  jwk_encrypted: string;
  created_at: number;
  /** Set when rotated out: still published (verification only) during the overlap. */
  retired_at: number | null;
}

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

export interface OAuthConsentsTable {
  account_id: string;
  client_id: string;
  grant_id: string;
  updated_at: number;
}

/** Operator-created clients for the client_credentials grant (migration 003, ./machineClients.ts). */
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

export interface OAuthDatabase {
  oauth_payloads: OAuthPayloadsTable;
  oauth_machine_clients: OAuthMachineClientsTable;
  oauth_signing_keys: OAuthSigningKeysTable;
  oauth_users: OAuthUsersTable;
  oauth_consents: OAuthConsentsTable;
}

/**
 * The Kysely instance behind a SQL store. The SqlStore keeps it as a protected `db` field;
 * reading it here keeps src/store untouched. Fails at startup for any other Store.
 */
export function oauthDatabase(store: Store): Kysely<OAuthDatabase> {
  const db = (store as unknown as { db?: unknown }).db;
  if (
    db === null ||
    typeof db !== "object" ||
    typeof (db as { selectFrom?: unknown }).selectFrom !== "function"
  ) {
    throw new Error(
      "the built-in authorization server needs a SQL store (SQLite or PostgreSQL) opened by openStore()",
    );
  }
  return db as Kysely<OAuthDatabase>;
}
