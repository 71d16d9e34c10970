/**
 * Migration 004 — tool pinning (src/authz/toolCatalogue.ts): the SHA-256 of every tool
 * definition a server listed, recorded the first time it was seen, and the definition it
 * serves now when that differs (a "rug pull" until an operator accepts it with
 * `portcullis tools accept`). Same rules as 001: instants as `bigint` epoch milliseconds,
 * structured values as JSON text. Also creates the `tool_pins` revision row, which every
 * tool-pin write bumps first so writers from several processes take turns.
 */
import type { Kysely, Migration } from "kysely";
import type { StoreDialect } from "./index.js";

export function toolPins(_dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable("tool_pins")
        .addColumn("server", "text", (c) => c.notNull())
        .addColumn("tool", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("first_seen_at", "bigint", (c) => c.notNull())
        .addColumn("pinned_hash", "text", (c) => c.notNull())
        .addColumn("pinned_definition", "text", (c) => c.notNull())
        .addColumn("current_hash", "text", (c) => c.notNull())
        .addColumn("current_definition", "text")
        .addColumn("changed_at", "bigint")
        .addColumn("accepted_at", "bigint")
        .addColumn("accepted_by", "text")
        .addPrimaryKeyConstraint("tool_pins_pk", ["server", "tool"])
        .execute();
      await (db as Kysely<{ revisions: { name: string; value: number } }>)
        .insertInto("revisions")
        .values({ name: "tool_pins", value: 0 })
        .execute();
    },

    async down(db: Kysely<unknown>): Promise<void> {
      await (db as Kysely<{ revisions: { name: string; value: number } }>)
        .deleteFrom("revisions")
        .where("name", "=", "tool_pins")
        .execute();
      await db.schema.dropTable("tool_pins").execute();
    },
  };
}
