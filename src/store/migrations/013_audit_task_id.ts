/**
 * Migration 013 — the audit trail by task: `audit_log.task_id`, the task a record is about
 * (a request made with a task token, the task's creation, its end), copied from the hashed
 * `detail.task` when the row is written, and indexed so `portcullis audit search --task <id>`
 * is one index lookup however large the log. Records written before it name no task.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function auditTaskId(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable("audit_log").addColumn("task_id", "text").execute();
      await db.schema.createIndex("audit_log_task_id").on("audit_log").columns(["task_id", "seq"]).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex("audit_log_task_id").execute();
      await db.schema.alterTable("audit_log").dropColumn("task_id").execute();
    },
  };
}
