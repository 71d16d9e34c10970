/**
 * The arguments as an approver sees them (CLI, webhook payload, confirmation page): enough
 * to judge the call, without handing secrets to a chat channel. Values under a secret-looking
 * name are masked, and so are secrets pasted into free text (the audit trail's patterns,
 * src/audit/freeTextSecrets.ts); long strings and nested values are shown by size and hash prefix.
 */
import { createHash } from "node:crypto";
import { freeTextSecrets } from "../audit/freeTextSecrets.js";
import type { JsonObject } from "../classify/message.js";
import { canonicalJson } from "../core/canonicalJson.js";

const SECRET_NAME = /pass(word|phrase)?|secret|token|api[-_]?key|auth|credential|private|cookie|session/i;
const MAX_STRING = 200;
const MAX_KEYS = 50;

function digest(value: unknown): string {
  return `sha256:${createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16)}`;
}

/** Replaces each secret found in free text by a marker (overlapping finds become one). */
function maskFreeText(text: string): string {
  let out = "";
  let at = 0;
  for (const [start, end] of freeTextSecrets(text).sort((a, b) => a[0] - b[0])) {
    if (start >= at) out += `${text.slice(at, start)}[masked]`;
    at = Math.max(at, end);
  }
  return out + text.slice(at);
}

function summarizeValue(name: string, value: unknown): unknown {
  if (SECRET_NAME.test(name)) return "[masked]";
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "string") {
    return value.length <= MAX_STRING
      ? maskFreeText(value)
      : `[${value.length} characters, ${digest(value)}]`;
  }
  const json = canonicalJson(value);
  if (json.length <= MAX_STRING && !SECRET_NAME.test(json)) return value;
  const kind = Array.isArray(value) ? `array of ${value.length}` : "object";
  return `[${kind}, ${json.length} bytes, ${digest(value)}]`;
}

export function summarizeArguments(args: JsonObject): Record<string, unknown> {
  // No prototype: an argument named "__proto__" is shown like any other, never swallowed.
  const out: Record<string, unknown> = Object.create(null);
  const keys = Object.keys(args).sort();
  for (const key of keys.slice(0, MAX_KEYS)) out[key] = summarizeValue(key, args[key]);
  if (keys.length > MAX_KEYS) out["…"] = `${keys.length - MAX_KEYS} more arguments`;
  return out;
}
