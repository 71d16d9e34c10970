/**
 * Migration 012 — identifiers of JWT authorization grants already redeemed at the built-in
 * authorization server (RFC 7523 §3 item 7, draft-ietf-oauth-identity-assertion-authz-grant
 * and MCP "Enterprise-Managed Authorization" §7.4.2: an ID-JAG's `jti` is refused a second
 * time for as long as the assertion lives). One row per redeemed assertion, shared by every
 * replica on PostgreSQL, keyed by a hash of issuer and `jti` (src/oauth/assertionReplay.ts);
 * `expires_at` (epoch ms) is the assertion's expiry, after which the row is purged, so the
 * table holds at most the assertions of one maximum lifetime.
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "./index.js";

export function assertionReplay(_dialect: StoreDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("oauth_assertion_replay")
        .addColumn("key", "varchar(64)", (c) => c.primaryKey())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("oauth_assertion_replay_expires_at")
        .on("oauth_assertion_replay")
        .column("expires_at")
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("oauth_assertion_replay").execute();
    },
  };
}
