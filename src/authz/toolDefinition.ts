/**
 * Tool definitions as pinned (MCP spec 2025-06-18+, server/tools "Tool"): the hashed fields,
 * their canonical JSON and SHA-256, and which fields differ between two definitions.
 */
import { CanonicalJsonTooDeep, canonicalJson, sha256Hex } from "../core/canonicalJson.js";
import type { ToolDefinition } from "../store/types.js";

/** The fields of a tool definition that are hashed, in canonical (sorted) order. */
export const PINNED_FIELDS = [
  "annotations",
  "description",
  "inputSchema",
  "name",
  "outputSchema",
  "title",
] as const;
export type PinnedField = (typeof PINNED_FIELDS)[number];

/** Canonical JSON of each hashed field that is present. */
export type FieldMap = Partial<Record<PinnedField, string>>;

/** One observed definition, hashed. */
export interface HashedDefinition {
  name: string;
  /** Canonical JSON of the hashed fields (sorted keys, no whitespace). */
  canonical: string;
  /** SHA-256 of `canonical`, hex. */
  hash: string;
  fields: FieldMap;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The hashed fields of a definition object, each as canonical JSON. */
function fieldsOf(def: Readonly<Record<string, unknown>>): FieldMap {
  const fields: FieldMap = {};
  for (const f of PINNED_FIELDS) {
    if (Object.hasOwn(def, f) && def[f] !== undefined) fields[f] = canonicalJson(def[f], 1);
  }
  return fields;
}

function assemble(fields: FieldMap): string {
  const parts: string[] = [];
  for (const f of PINNED_FIELDS) {
    const v = fields[f];
    if (v !== undefined) parts.push(`${JSON.stringify(f)}:${v}`);
  }
  return `{${parts.join(",")}}`;
}

/**
 * Hashes one entry of a tools/list result. Null when it is not a tool (no object, no
 * string name). A definition that cannot be canonicalised (nested too deep) is recorded as
 * `{ invalid, name }`: no annotations, so the strictest tier, and a change from any real
 * definition.
 */
export function hashToolDefinition(tool: unknown): HashedDefinition | null {
  if (!isObject(tool) || typeof tool.name !== "string" || tool.name === "") return null;
  let fields: FieldMap;
  let canonical: string;
  try {
    fields = fieldsOf(tool);
    canonical = assemble(fields);
  } catch (err) {
    const reason = err instanceof CanonicalJsonTooDeep ? err.message : "not serialisable as JSON";
    fields = { name: JSON.stringify(tool.name) };
    canonical = `{"invalid":${JSON.stringify(reason)},"name":${fields.name}}`;
  }
  return { name: tool.name, canonical, hash: sha256Hex(canonical), fields };
}

/** Top-level fields that differ between two definitions. */
export function changedFields(a: FieldMap, b: FieldMap): PinnedField[] {
  return PINNED_FIELDS.filter((f) => a[f] !== b[f]);
}

/** Top-level fields that differ between two stored definitions. */
export function definitionChanges(pinned: ToolDefinition, current: ToolDefinition): PinnedField[] {
  return changedFields(fieldsOfRecord(pinned), fieldsOfRecord(current));
}

export function fieldsOfRecord(def: ToolDefinition): FieldMap {
  try {
    return fieldsOf(def);
  } catch {
    return { name: canonicalJson(def.name ?? null) };
  }
}
