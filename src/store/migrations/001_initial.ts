/**
 * Migration 001 — the initial schema: API keys, the audit log, settings and the
 * revision counters. Written with Kysely's schema builder so the same definition runs on
 * SQLite and PostgreSQL; the only dialect difference is how the audit sequence number is
 * generated. Instants are `bigint` epoch milliseconds (SQLite gives the column INTEGER
 * affinity; the PostgreSQL store parses int8 as a JS number). See docs/storage-schema.md.
 */
import type { Kysely } from "kysely";
import type { StoreDialect } from "./index.js";

export function initial(dialect: StoreDialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("environment", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .addColumn("rotated_from", "text")
        .addColumn("last_used_at", "bigint")
        .addColumn("use_count", "bigint", (c) => c.notNull().defaultTo(0))
        .execute();

      // SQLite only auto-generates for exactly `INTEGER PRIMARY KEY`; PostgreSQL needs a sequence.
      const audit =
        dialect === "sqlite"
          ? db.schema
              .createTable("audit_log")
              .addColumn("seq", "integer", (c) => c.primaryKey().autoIncrement())
          : db.schema.createTable("audit_log").addColumn("seq", "bigserial", (c) => c.primaryKey());
      await audit
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("environment", "text", (c) => c.notNull())
        .addColumn("principal", "text")
        .addColumn("method", "text")
        .addColumn("credential_id", "text")
        .addColumn("server", "text")
        .addColumn("rpc_method", "text")
        .addColumn("tool", "text")
        .addColumn("decision", "text", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("latency_us", "bigint", (c) => c.notNull())
        .addColumn("detail", "text")
        .execute();
      await db.schema
        .createIndex("audit_log_credential_id")
        .on("audit_log")
        .column("credential_id")
        .execute();
      await db.schema.createIndex("audit_log_at").on("audit_log").column("at").execute();

      await db.schema
        .createTable("settings")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("revisions")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "bigint", (c) => c.notNull())
        .execute();
      await (db as Kysely<{ revisions: { name: string; value: number } }>)
        .insertInto("revisions")
        .values({ name: "keys", value: 0 })
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ["revisions", "settings", "audit_log", "api_keys"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
