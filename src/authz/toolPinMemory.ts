/**
 * Keeping the tool catalogue's memory (./toolCatalogue.ts) in step with the shared store:
 * the store's pins replace memory after a change-feed reload, a write's returned records are
 * merged in, and sightings not yet written are applied again on top, so neither a reload nor
 * another replica that pinned first hides a definition change from the audit log.
 */
import { nextPinState, type PinState } from "../store/toolPins.js";
import type { ToolDefinition, ToolPinRecord, ToolSighting } from "../store/types.js";
import { changedFields, fieldsOfRecord } from "./toolDefinition.js";
import { type EntryBuilder, type EntryTable, type ToolChange, toolsOf } from "./toolFacts.js";

/** The key of one tool in maps of pending state. */
export function pinKey(server: string, tool: string): string {
  return JSON.stringify([server, tool]);
}

/** A table of the store's pins, reusing what `previous` already parsed. */
export function tableOfRecords(
  records: ToolPinRecord[],
  previous: EntryTable,
  build: EntryBuilder,
): EntryTable {
  const next: EntryTable = new Map();
  for (const r of records) {
    toolsOf(next, r.server).set(r.tool, build.fromRecord(r, previous.get(r.server)?.get(r.tool)));
  }
  return next;
}

/**
 * Applies records returned by a write; returns the changes memory did not expect (what it
 * believed of each tool is in `expected`): another process pinned a different definition.
 */
export function mergeRecords(
  table: EntryTable,
  records: ToolPinRecord[],
  expected: ReadonlyMap<string, PinState | undefined>,
  build: EntryBuilder,
  now: () => Date,
): ToolChange[] {
  const late: ToolChange[] = [];
  for (const r of records) {
    const tools = toolsOf(table, r.server);
    const entry = build.fromRecord(r, tools.get(r.tool));
    const believed = expected.get(pinKey(r.server, r.tool));
    if (
      r.status === "changed" &&
      (believed === undefined ||
        believed.status !== "changed" ||
        believed.currentHash !== r.currentHash ||
        believed.pinnedHash !== r.pinnedHash)
    ) {
      late.push({
        server: r.server,
        tool: r.tool,
        pinnedHash: r.pinnedHash,
        previousHash: believed?.currentHash ?? r.pinnedHash,
        currentHash: r.currentHash,
        fields: changedFields(entry.pinnedFields, entry.currentFields),
        at: r.changedAt ?? now(),
        blocked: entry.blocked,
      });
    }
    tools.set(r.tool, entry);
  }
  return late;
}

/** Sightings not yet in the store, applied again on top of what it returned. */
export function reapplySightings(
  table: EntryTable,
  sightings: readonly ToolSighting[],
  previous: EntryTable,
  build: EntryBuilder,
): void {
  for (const s of sightings) {
    const tools = toolsOf(table, s.server);
    const entry = tools.get(s.tool);
    const next = nextPinState(entry?.state, s.hash);
    if (next === null) continue;
    const fields = fieldsOfRecord(JSON.parse(s.definition) as ToolDefinition);
    const e = build.entry(s.server, s.tool, next, entry?.pinnedFields ?? fields, fields);
    const old = entry ?? previous.get(s.server)?.get(s.tool);
    if (old?.raw !== undefined) {
      e.raw = old.raw;
      e.rawHash = old.rawHash;
    }
    tools.set(s.tool, e);
  }
}
