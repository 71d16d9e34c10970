/**
 * Migration 007 — runtime review (src/review/): one row per approval a policy `review`
 * decision asked for, bound to the exact caller (principal id), server, method, tool and the
 * SHA-256 of the canonical arguments. Single-use: `pending` → `approved` | `denied` |
 * `expired`, and `approved` → `consumed` when the held or retried call is forwarded. Who
 * decided, when and through which channel (console, cli, webhook) is kept for the audit.
 * Same rules as 001: instants as `bigint` epoch milliseconds, structured values as JSON text.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function approvals(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("approvals")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("environment", "text", (c) => c.notNull())
        .addColumn("principal_id", "text", (c) => c.notNull())
        .addColumn("principal_name", "text", (c) => c.notNull())
        .addColumn("principal_method", "text", (c) => c.notNull())
        .addColumn("credential_id", "text")
        .addColumn("server", "text", (c) => c.notNull())
        .addColumn("rpc_method", "text", (c) => c.notNull())
        .addColumn("tool", "text", (c) => c.notNull())
        .addColumn("arguments_hash", "text", (c) => c.notNull())
        .addColumn("arguments_summary", "text", (c) => c.notNull())
        .addColumn("decision_id", "text")
        .addColumn("rule_ids", "text", (c) => c.notNull())
        .addColumn("policy_version", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("decided_at", "bigint")
        .addColumn("decided_by", "text")
        .addColumn("decided_via", "text")
        .addColumn("reason", "text")
        .addColumn("consumed_at", "bigint")
        .execute();
      await db.schema
        .createIndex("approvals_status")
        .on("approvals")
        .columns(["status", "created_at"])
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex("approvals_status").execute();
      await db.schema.dropTable("approvals").execute();
    },
  };
}
