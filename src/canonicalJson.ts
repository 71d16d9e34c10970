/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order) at every level, no whitespace,
 * so equal values hash equally. Used for tool pinning, approval bindings and audit redaction.
 */
import { createHash } from "node:crypto";

/** Deeper values are refused (tool pinning records such a definition as invalid: the strictest tier). */
export const MAX_DEPTH = 64;

export class CanonicalJsonTooDeep extends Error {}

/** JSON with object keys sorted (UTF-16 code unit order) at every level, no whitespace. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > MAX_DEPTH) throw new CanonicalJsonTooDeep(`nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value !== "object") {
    // Non-JSON values (undefined, functions, symbols) become null, as inside JSON arrays.
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
    parts.push(`${JSON.stringify(key)}:${canonicalJson(v, depth + 1)}`);
  }
  return `{${parts.join(",")}}`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
