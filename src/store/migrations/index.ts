/**
 * The numbered migrations, listed in code (no filesystem scanning, so the compiled
 * bundle carries them), and the runner. Names are `NNN_description`; Kysely's Migrator
 * applies them in name order and records each in `portcullis_migration`. Never edit a
 * released migration: add the next number.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator } from "kysely";
import { initial } from "./001_initial.js";
import { oauth } from "./002_oauth.js";
import { machineClients } from "./003_machine_clients.js";
import { toolPins } from "./004_tool_pins.js";
import { auditDecisions } from "./005_audit_decisions.js";
import { auditChain } from "./006_audit_chain.js";
import { approvals } from "./007_approvals.js";
import { auditRegistry } from "./008_audit_registry.js";
import { keyOwnersRateLimits } from "./010_key_owners_rate_limits.js";
import { tasks } from "./011_tasks.js";
import { assertionReplay } from "./012_assertion_replay.js";
import { auditTaskId } from "./013_audit_task_id.js";

export type StoreDialect = "sqlite" | "postgres";

export function migrations(dialect: StoreDialect): Record<string, Migration> {
  return {
    "001_initial": initial(dialect),
    "002_oauth": oauth(dialect),
    "003_machine_clients": machineClients(dialect),
    "004_tool_pins": toolPins(dialect),
    "005_audit_decisions": auditDecisions(dialect),
    "006_audit_chain": auditChain(dialect),
    "007_approvals": approvals(dialect),
    "008_audit_registry": auditRegistry(dialect),
    "010_key_owners_rate_limits": keyOwnersRateLimits(dialect),
    "011_tasks": tasks(dialect),
    "012_assertion_replay": assertionReplay(dialect),
    "013_audit_task_id": auditTaskId(dialect),
  };
}

/** Applies every pending migration; a no-op when the schema is current. */
export async function migrateToLatest(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: "portcullis_migration",
    migrationLockTableName: "portcullis_migration_lock",
    // 006 (audit chain) was numbered before 007 (approvals) but merged after it: stores that
    // already ran 007 apply 006 next. The two touch different tables.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    const cause = error instanceof Error ? error.message : String(error);
    throw new Error(`${dialect} store migration ${failed ?? "(setup)"} failed: ${cause}`, { cause: error });
  }
}
