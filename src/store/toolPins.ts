/**
 * The `tool_pins` table (migration 004, ./schema.ts): the row ↔ record mapping and the
 * pinning rule itself, shared by the store (which applies it to rows inside a transaction)
 * and the gateway's in-memory catalogue (src/authz/toolCatalogue.ts), so both agree.
 * See docs/storage-schema.md.
 */
import type { ToolPinsTable } from "./schema.js";
import type { ToolDefinition, ToolPinRecord, ToolPinStatus, ToolSighting } from "./types.js";

export type ToolPinRow = ToolPinsTable;

/** The part of a pin the rule looks at. */
export interface PinState {
  status: ToolPinStatus;
  pinnedHash: string;
  currentHash: string;
}

/**
 * The pinning rule. First sighting: pinned to it. The definition served last again: nothing
 * to do. Anything else — a new definition, or a return to the pinned one after a change —
 * makes the tool `changed` until an operator accepts: a server that flips a definition back
 * and forth is itself something to review. Returns null when nothing changes.
 */
export function nextPinState(state: PinState | undefined, hash: string): PinState | null {
  if (state === undefined) return { status: "pinned", pinnedHash: hash, currentHash: hash };
  if (state.currentHash === hash) return null;
  return { status: "changed", pinnedHash: state.pinnedHash, currentHash: hash };
}

/** The row after a sighting, or null when nothing changes. */
export function sightedRow(row: ToolPinRow | undefined, s: ToolSighting): ToolPinRow | null {
  if (row === undefined) {
    return {
      server: s.server,
      tool: s.tool,
      status: "pinned",
      first_seen_at: s.at.getTime(),
      pinned_hash: s.hash,
      pinned_definition: s.definition,
      current_hash: s.hash,
      current_definition: null,
      changed_at: null,
      accepted_at: null,
      accepted_by: null,
    };
  }
  const next = nextPinState(rowState(row), s.hash);
  if (next === null) return null;
  return {
    ...row,
    status: next.status,
    current_hash: s.hash,
    current_definition: s.hash === row.pinned_hash ? null : s.definition,
    changed_at: s.at.getTime(),
  };
}

/** The row after an operator accepted its current definition. */
export function acceptedRow(row: ToolPinRow, at: Date, by: string | null): ToolPinRow {
  return {
    ...row,
    status: "pinned",
    pinned_hash: row.current_hash,
    pinned_definition: row.current_definition ?? row.pinned_definition,
    current_definition: null,
    accepted_at: at.getTime(),
    accepted_by: by,
  };
}

export function rowState(row: ToolPinRow): PinState {
  return { status: row.status as ToolPinStatus, pinnedHash: row.pinned_hash, currentHash: row.current_hash };
}

function definition(json: string): ToolDefinition {
  return JSON.parse(json) as ToolDefinition;
}

export function rowToToolPin(row: ToolPinRow): ToolPinRecord {
  const pinnedDefinition = definition(row.pinned_definition);
  return {
    server: row.server,
    tool: row.tool,
    status: row.status as ToolPinStatus,
    firstSeenAt: new Date(row.first_seen_at),
    pinnedHash: row.pinned_hash,
    pinnedDefinition,
    currentHash: row.current_hash,
    currentDefinition:
      row.current_definition === null ? pinnedDefinition : definition(row.current_definition),
    changedAt: row.changed_at === null ? null : new Date(row.changed_at),
    acceptedAt: row.accepted_at === null ? null : new Date(row.accepted_at),
    acceptedBy: row.accepted_by,
  };
}
