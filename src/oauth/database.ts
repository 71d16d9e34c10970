/**
 * Where the built-in authorization server keeps its tables (migrations 002 and 003): the
 * gateway's own database (SQLite or PostgreSQL), reached through the store's accessor for
 * them, typed by the one schema of src/store/schema.ts.
 */
import type { Kysely } from "kysely";
import type { Schema } from "../store/schema.js";
import type { Store } from "../store/types.js";

export type {
  OAuthConsentsTable,
  OAuthMachineClientsTable,
  OAuthPayloadsTable,
  OAuthSigningKeysTable,
  OAuthUsersTable,
} from "../store/schema.js";

/** The database as the OAuth modules query it: the store's one schema, not a view of its own. */
export type OAuthDatabase = Schema;

/** The store's Kysely instance for the authorization server's tables. */
export function oauthDatabase(store: Store): Kysely<OAuthDatabase> {
  return store.oauthDatabase();
}
