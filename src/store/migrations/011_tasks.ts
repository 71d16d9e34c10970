/**
 * Migration 011 — tasks (src/tasks/, docs/tasks.md): one row per task, a unit of agent work
 * with an owner, a purpose, grants, a bounded lifetime and an optional call budget. Its task
 * tokens are refused from the next request once `ended_at` is set (every change to a task's
 * liveness is announced on the store's change feed, src/store/repositories/tasks.ts).
 * `calls_used` moves by one conditional UPDATE per call, so a budget holds across replicas.
 * Same rules as 001: instants as `bigint` epoch milliseconds, structured values as JSON text.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function tasks(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("tasks")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("owner_id", "text", (c) => c.notNull())
        .addColumn("owner_kind", "text", (c) => c.notNull())
        .addColumn("owner_method", "text", (c) => c.notNull())
        .addColumn("owner_name", "text", (c) => c.notNull())
        .addColumn("owner_credential_id", "text")
        .addColumn("owner_grant_id", "text")
        .addColumn("actor_json", "text")
        .addColumn("purpose", "text", (c) => c.notNull())
        .addColumn("grants_json", "text", (c) => c.notNull())
        .addColumn("environment", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("budget", "integer")
        .addColumn("calls_used", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("ended_at", "bigint")
        .addColumn("end_reason", "text")
        .addColumn("ended_by", "text")
        .addColumn("client_id", "text")
        .execute();
      // Live tasks (the verifier's view, `tasks list`): not ended, by expiry.
      await db.schema.createIndex("tasks_live").on("tasks").columns(["ended_at", "expires_at"]).execute();
      await db.schema.createIndex("tasks_owner").on("tasks").columns(["owner_id", "created_at"]).execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex("tasks_owner").execute();
      await db.schema.dropIndex("tasks_live").execute();
      await db.schema.dropTable("tasks").execute();
    },
  };
}
