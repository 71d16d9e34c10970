/**
 * Migration 003 — machine clients of the built-in authorization server (src/oauth/machineClients.ts):
 * operator-created OAuth clients for the `client_credentials` grant (MCP extension
 * "oauth-client-credentials"), authenticated by `private_key_jwt` (RFC 7523 §2.2, only the
 * public keys are stored) or `client_secret_basic` (the secret AES-256-GCM sealed, never in
 * plaintext). Same rules as 001: instants as `bigint` epoch milliseconds, structured values
 * as JSON text.
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "./index.js";

export function machineClients(_dialect: StoreDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("oauth_machine_clients")
        .addColumn("client_id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("auth_method", "text", (c) => c.notNull())
        .addColumn("secret_sealed", "text")
        .addColumn("jwks", "text")
        .addColumn("servers", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("oauth_machine_clients").execute();
    },
  };
}
