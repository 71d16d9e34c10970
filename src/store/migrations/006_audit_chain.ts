/**
 * Migration 006 — the tamper-evident audit trail (src/audit/, docs/audit.md):
 *
 * - `audit_log` gains the chain columns: `chain` (one per gateway process), `chain_seq`
 *   (1, 2, … within the chain), `prev_hash` and `hash` (SHA-256 hex, src/audit/chain.ts), and
 *   `arguments` (the call's arguments in the configured redacted form, JSON text). Records
 *   written before this migration keep null chain columns ("unchained").
 * - `audit_chains`: one row per chain, with its anchor: the signed checkpoint its oldest kept
 *   record links to once retention purged older records (0 and the genesis hash before).
 * - `audit_checkpoints`: signed (Ed25519) statements "chain C had N records ending in hash H
 *   at time T", so a truncated tail or a rewritten chain is detectable.
 * - `audit_signing_keys`: the checkpoint keys; the private key sealed (AES-256-GCM) under a
 *   key derived from the server secret, the public key in the clear (SPKI PEM).
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function auditChain(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const [column, type] of [
        ["chain", "text"],
        ["chain_seq", "bigint"],
        ["prev_hash", "text"],
        ["hash", "text"],
        ["arguments", "text"],
      ] as const) {
        await db.schema.alterTable("audit_log").addColumn(column, type).execute();
      }
      await db.schema
        .createIndex("audit_log_chain_seq")
        .on("audit_log")
        .columns(["chain", "chain_seq"])
        .unique()
        .execute();
      await db.schema.createIndex("audit_log_principal").on("audit_log").column("principal").execute();

      await db.schema
        .createTable("audit_chains")
        .addColumn("chain", "text", (c) => c.primaryKey())
        .addColumn("started_at", "bigint", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("pid", "bigint", (c) => c.notNull())
        .addColumn("anchor_seq", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("anchor_hash", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("audit_checkpoints")
        .addColumn("chain", "text", (c) => c.notNull())
        .addColumn("chain_seq", "bigint", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .addColumn("count", "bigint", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("key_id", "text", (c) => c.notNull())
        .addColumn("signature", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("audit_checkpoints_pk", ["chain", "chain_seq"])
        .execute();

      await db.schema
        .createTable("audit_signing_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("public_key", "text", (c) => c.notNull())
        .addColumn("private_key_sealed", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of ["audit_signing_keys", "audit_checkpoints", "audit_chains"]) {
        await db.schema.dropTable(table).execute();
      }
      await db.schema.dropIndex("audit_log_principal").execute();
      await db.schema.dropIndex("audit_log_chain_seq").execute();
      for (const column of ["arguments", "hash", "prev_hash", "chain_seq", "chain"]) {
        await db.schema.alterTable("audit_log").dropColumn(column).execute();
      }
    },
  };
}
