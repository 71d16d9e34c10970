/**
 * Migration 005 — policy decisions in the audit log: the decision id a refused client is
 * given (so an operator can find the record), the ids of the rules that decided and the
 * version of the policy set that was in force. Decisions become allow, deny or review.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function auditDecisions(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable("audit_log").addColumn("decision_id", "text").execute();
      await db.schema.alterTable("audit_log").addColumn("policy_version", "text").execute();
      await db.schema.alterTable("audit_log").addColumn("rule_ids", "text").execute();
      await db.schema.createIndex("audit_log_decision_id").on("audit_log").column("decision_id").execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex("audit_log_decision_id").execute();
      for (const column of ["rule_ids", "policy_version", "decision_id"]) {
        await db.schema.alterTable("audit_log").dropColumn(column).execute();
      }
    },
  };
}
