/**
 * Migration 010 — two facts every replica must share:
 * - who created each API key and each OAuth machine client (`created_by`: a principal id such
 *   as `operator:alice` or `oauth:<issuer>#<sub>`, and `created_by_name`), so that separation of
 *   duties can refuse an approval by the owner of the caller's credential
 *   (src/review/separationOfDuties.ts). Null for credentials created before this migration: their
 *   owner is unknown;
 * - rate-limit counters (`portcullis_rate_limits`, the schema of rate-limiter-flexible's
 *   PostgreSQL backend: key, points, expire in epoch ms), so that sign-in and registration
 *   limits hold across replicas (src/store/rateLimitCounters.ts). Created on SQLite too, unused
 *   there: one schema for both dialects.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function keyOwnersRateLimits(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable("api_keys").addColumn("created_by", "text").execute();
      await db.schema.alterTable("api_keys").addColumn("created_by_name", "text").execute();
      await db.schema.alterTable("oauth_machine_clients").addColumn("created_by", "text").execute();
      await db.schema.alterTable("oauth_machine_clients").addColumn("created_by_name", "text").execute();
      await db.schema
        .createTable("portcullis_rate_limits")
        .addColumn("key", "varchar(255)", (c) => c.primaryKey())
        .addColumn("points", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("expire", "bigint")
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable("portcullis_rate_limits").execute();
      await db.schema.alterTable("oauth_machine_clients").dropColumn("created_by_name").execute();
      await db.schema.alterTable("oauth_machine_clients").dropColumn("created_by").execute();
      await db.schema.alterTable("api_keys").dropColumn("created_by_name").execute();
      await db.schema.alterTable("api_keys").dropColumn("created_by").execute();
    },
  };
}
