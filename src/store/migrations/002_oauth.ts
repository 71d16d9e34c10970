/**
 * Migration 002 — the built-in OAuth 2.1 authorization server (src/oauth/): oidc-provider's
 * artefacts (RFC 6749 codes and tokens, grants, sessions, interactions, registered clients),
 * the signing keys (encrypted at rest), local users and remembered consents. Same rules as
 * 001: Kysely's schema builder for SQLite and PostgreSQL, instants as `bigint` epoch
 * milliseconds, structured values as JSON text.
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "./index.js";

export function oauth(_dialect: StoreDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("oauth_payloads")
        .addColumn("model", "text", (c) => c.notNull())
        .addColumn("id", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("grant_id", "text")
        .addColumn("uid", "text")
        .addColumn("user_code", "text")
        .addColumn("expires_at", "bigint")
        .addColumn("consumed_at", "bigint")
        .addPrimaryKeyConstraint("oauth_payloads_pk", ["model", "id"])
        .execute();
      await db.schema
        .createIndex("oauth_payloads_grant_id")
        .on("oauth_payloads")
        .column("grant_id")
        .execute();
      await db.schema.createIndex("oauth_payloads_uid").on("oauth_payloads").column("uid").execute();
      await db.schema
        .createIndex("oauth_payloads_user_code")
        .on("oauth_payloads")
        .column("user_code")
        .execute();
      await db.schema
        .createIndex("oauth_payloads_expires_at")
        .on("oauth_payloads")
        .column("expires_at")
        .execute();

      await db.schema
        .createTable("oauth_signing_keys")
        .addColumn("kid", "text", (c) => c.primaryKey())
        .addColumn("jwk_encrypted", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("retired_at", "bigint")
        .execute();

      await db.schema
        .createTable("oauth_users")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("username", "text", (c) => c.notNull().unique())
        .addColumn("password_hash", "text", (c) => c.notNull())
        .addColumn("email", "text")
        .addColumn("groups", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("disabled_at", "bigint")
        .execute();

      // Consent remembered per user per client: the oidc-provider Grant that holds it.
      await db.schema
        .createTable("oauth_consents")
        .addColumn("account_id", "text", (c) => c.notNull())
        .addColumn("client_id", "text", (c) => c.notNull())
        .addColumn("grant_id", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("oauth_consents_pk", ["account_id", "client_id"])
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ["oauth_consents", "oauth_users", "oauth_signing_keys", "oauth_payloads"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
