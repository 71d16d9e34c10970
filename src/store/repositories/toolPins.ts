/**
 * Tool pins (table `tool_pins`, migration 004): the pinning rule of ../toolPins.ts applied to
 * current rows inside one transaction, every write announced on the change feed.
 */
import type { Transaction } from "kysely";
import type { Schema } from "../schema.js";
import { acceptedRow, rowToToolPin, sightedRow, type ToolPinRow } from "../toolPins.js";
import type {
  ToolAcceptOutcome,
  ToolAcceptRequest,
  ToolPinRecord,
  ToolPinRepository,
  ToolPinStatus,
  ToolSighting,
} from "../types.js";
import type { StoreContext } from "./context.js";

/** Tool pins per INSERT statement (11 columns): under both dialects' bind-parameter limits. */
const PIN_CHUNK = 500;

export class SqlToolPinRepository implements ToolPinRepository {
  constructor(private readonly ctx: StoreContext) {}

  async listToolPins(opts: { server?: string; status?: ToolPinStatus } = {}): Promise<ToolPinRecord[]> {
    let q = this.ctx.db.selectFrom("tool_pins").selectAll().orderBy("server").orderBy("tool");
    if (opts.server !== undefined) q = q.where("server", "=", opts.server);
    if (opts.status !== undefined) q = q.where("status", "=", opts.status);
    return (await q.execute()).map(rowToToolPin);
  }

  async getToolPin(server: string, tool: string): Promise<ToolPinRecord | undefined> {
    const row = await this.ctx.db
      .selectFrom("tool_pins")
      .selectAll()
      .where("server", "=", server)
      .where("tool", "=", tool)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToToolPin(row);
  }

  async toolPinsRevision(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom("revisions")
      .select("value")
      .where("name", "=", "tool_pins")
      .executeTakeFirstOrThrow(() => new Error("store schema is missing the 'tool_pins' revision row"));
    return Number(row.value);
  }

  async recordToolSightings(sightings: ToolSighting[]): Promise<ToolPinRecord[]> {
    if (sightings.length === 0) return [];
    const result = new Map<string, ToolPinRow>();
    await this.ctx.mutate(async (trx) => {
      result.clear();
      await lockToolPins(trx);
      const servers = [...new Set(sightings.map((s) => s.server))];
      const rows = new Map<string, ToolPinRow>();
      const existing = await trx.selectFrom("tool_pins").selectAll().where("server", "in", servers).execute();
      for (const row of existing) rows.set(pinKey(row.server, row.tool), row);
      const inserts = new Map<string, ToolPinRow>();
      const updates = new Map<string, ToolPinRow>();
      for (const s of sightings) {
        const key = pinKey(s.server, s.tool);
        const row = rows.get(key);
        const next = sightedRow(row, s);
        if (next !== null) {
          rows.set(key, next);
          if (inserts.has(key) || row === undefined) inserts.set(key, next);
          else updates.set(key, next);
        }
        result.set(key, next ?? (row as ToolPinRow));
      }
      const fresh = [...inserts.values()];
      for (let i = 0; i < fresh.length; i += PIN_CHUNK) {
        await trx
          .insertInto("tool_pins")
          .values(fresh.slice(i, i + PIN_CHUNK))
          .execute();
      }
      for (const row of updates.values()) await updateToolPin(trx, row);
      // New pins are news too: a replica that never saw this server's tools/list learns their
      // risk tiers from the feed instead of treating them as unknown (destructive) until restart.
      return inserts.size > 0 || updates.size > 0;
    });
    return [...result.values()].map(rowToToolPin);
  }

  async acceptToolPins(
    requests: ToolAcceptRequest[],
    opts: { at: Date; by: string | null },
  ): Promise<ToolAcceptOutcome[]> {
    const outcomes: ToolAcceptOutcome[] = [];
    if (requests.length === 0) return outcomes;
    await this.ctx.mutate(async (trx) => {
      outcomes.length = 0;
      await lockToolPins(trx);
      let accepted = false;
      for (const req of requests) {
        const row = await trx
          .selectFrom("tool_pins")
          .selectAll()
          .where("server", "=", req.server)
          .where("tool", "=", req.tool)
          .executeTakeFirst();
        const base = { server: req.server, tool: req.tool };
        if (row === undefined) {
          outcomes.push({ ...base, outcome: "unknown", previousHash: null, record: null });
        } else if (req.expectedHash !== undefined && req.expectedHash !== row.current_hash) {
          outcomes.push({
            ...base,
            outcome: "hash_mismatch",
            previousHash: row.pinned_hash,
            record: rowToToolPin(row),
          });
        } else if (row.status === "pinned") {
          outcomes.push({
            ...base,
            outcome: "already_pinned",
            previousHash: row.pinned_hash,
            record: rowToToolPin(row),
          });
        } else {
          const next = acceptedRow(row, opts.at, opts.by);
          await updateToolPin(trx, next);
          accepted = true;
          outcomes.push({
            ...base,
            outcome: "accepted",
            previousHash: row.pinned_hash,
            record: rowToToolPin(next),
          });
        }
      }
      return accepted;
    });
    return outcomes;
  }
}

/**
 * Every tool-pin write first bumps the `tool_pins` revision: that takes the writer lock
 * (SQLite) or the row lock (PostgreSQL) before anything is read, so writers in several
 * processes apply the pinning rule one after another to current rows.
 */
async function lockToolPins(trx: Transaction<Schema>): Promise<void> {
  const res = await trx
    .updateTable("revisions")
    .set((eb) => ({ value: eb("value", "+", 1) }))
    .where("name", "=", "tool_pins")
    .executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw new Error("store schema is missing the 'tool_pins' revision row");
}

function pinKey(server: string, tool: string): string {
  return JSON.stringify([server, tool]);
}

async function updateToolPin(trx: Transaction<Schema>, row: ToolPinRow): Promise<void> {
  const { server, tool, ...rest } = row;
  await trx
    .updateTable("tool_pins")
    .set(rest)
    .where("server", "=", server)
    .where("tool", "=", tool)
    .execute();
}
