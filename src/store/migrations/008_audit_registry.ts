/**
 * Migration 008 — a signed registry of audit chains, signed anchors, checkpoints that name the
 * registry (src/audit/registry.ts, docs/audit.md):
 *
 * - `audit_chains` gains the registry link: `reg_seq` (1, 2, … across every chain, unique),
 *   `prev_reg_hash`, `reg_hash` (SHA-256 of the registration, linked like the records of a
 *   chain), `reg_legacy` (only on entry 1: the chains and unchained records that existed
 *   before the registry, as JSON text) and the Ed25519 signature (`reg_key_id`,
 *   `reg_signature`). A chain is registered in the transaction that stores its first records,
 *   so a registered chain is never empty and a deleted chain leaves a hole in the registry.
 * - `audit_chains` gains the anchor's signature (`anchor_at`, `anchor_key_id`,
 *   `anchor_signature`): retention signs every anchor it moves, so moving one by hand shows.
 * - `audit_checkpoints` gains `registry_seq` / `registry_hash`: the registry entry the writer
 *   saw when it signed (checkpoint payload v2), so deleting the newest chains shows too.
 *
 * Chains opened before this migration keep null registry columns; the first registration
 * lists them (and their anchors) in its signed `reg_legacy`.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

const CHAIN_COLUMNS = [
  ["reg_seq", "bigint"],
  ["prev_reg_hash", "text"],
  ["reg_hash", "text"],
  ["reg_legacy", "text"],
  ["reg_key_id", "text"],
  ["reg_signature", "text"],
  ["anchor_at", "bigint"],
  ["anchor_key_id", "text"],
  ["anchor_signature", "text"],
] as const;

const CHECKPOINT_COLUMNS = [
  ["registry_seq", "bigint"],
  ["registry_hash", "text"],
] as const;

export function auditRegistry(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const [column, type] of CHAIN_COLUMNS) {
        await db.schema.alterTable("audit_chains").addColumn(column, type).execute();
      }
      await db.schema
        .createIndex("audit_chains_reg_seq")
        .on("audit_chains")
        .column("reg_seq")
        .unique()
        .execute();
      for (const [column, type] of CHECKPOINT_COLUMNS) {
        await db.schema.alterTable("audit_checkpoints").addColumn(column, type).execute();
      }
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const [column] of CHECKPOINT_COLUMNS) {
        await db.schema.alterTable("audit_checkpoints").dropColumn(column).execute();
      }
      await db.schema.dropIndex("audit_chains_reg_seq").execute();
      for (const [column] of CHAIN_COLUMNS) {
        await db.schema.alterTable("audit_chains").dropColumn(column).execute();
      }
    },
  };
}
