/**
 * Canonical JSON: object keys sorted (UTF-16 code unit order) at every level, no whitespace,
 * so equal values hash equally. Used for tool pinning, approval bindings and audit redaction.
 *
 * Written without recursion (an explicit stack), so no value, however deep, can exhaust the
 * call stack: depth is a limit the caller chooses, not a crash. The audit writer hashes
 * values of any depth with {@link canonicalJsonUnbounded}; everything else keeps
 * {@link MAX_DEPTH}.
 */
import { createHash } from "node:crypto";

/** Deeper values are refused (tool pinning records such a definition as invalid: the strictest tier). */
export const MAX_DEPTH = 64;

export class CanonicalJsonTooDeep extends Error {}

/** A value no JSON text stands for: a cycle, or a BigInt. */
export class CanonicalJsonNotSerialisable extends Error {}

interface Frame {
  value: object;
  /** Sorted keys of an object; null for an array. */
  keys: string[] | null;
  next: number;
  written: number;
  depth: number;
}

function skipped(v: unknown): boolean {
  return v === undefined || typeof v === "function" || typeof v === "symbol";
}

function scalar(value: unknown): string {
  if (typeof value === "bigint") throw new CanonicalJsonNotSerialisable("a BigInt is not JSON");
  // Non-JSON values (undefined, functions, symbols) become null, as inside JSON arrays.
  return JSON.stringify(value) ?? "null";
}

function write(root: unknown, startDepth: number, maxDepth: number): string {
  let out = "";
  const frames: Frame[] = [];
  /** Containers on the current path: meeting one again is a cycle (a finite limit catches cycles itself). */
  const open = Number.isFinite(maxDepth) ? null : new Set<object>();
  const visit = (value: unknown, depth: number): void => {
    if (depth > maxDepth) throw new CanonicalJsonTooDeep(`nested deeper than ${maxDepth} levels`);
    if (value === null || typeof value !== "object") {
      out += scalar(value);
      return;
    }
    if (open !== null) {
      if (open.has(value)) throw new CanonicalJsonNotSerialisable("a cyclic value is not JSON");
      open.add(value);
    }
    const isArray = Array.isArray(value);
    out += isArray ? "[" : "{";
    frames.push({ value, keys: isArray ? null : Object.keys(value).sort(), next: 0, written: 0, depth });
  };
  visit(root, startDepth);
  while (frames.length > 0) {
    const f = frames[frames.length - 1] as Frame;
    if (f.keys === null) {
      const items = f.value as unknown[];
      if (f.next < items.length) {
        if (f.next > 0) out += ",";
        visit(items[f.next++], f.depth + 1);
        continue;
      }
    } else {
      const obj = f.value as Record<string, unknown>;
      while (f.next < f.keys.length && skipped(obj[f.keys[f.next] as string])) f.next++;
      if (f.next < f.keys.length) {
        const key = f.keys[f.next++] as string;
        out += `${f.written++ > 0 ? "," : ""}${JSON.stringify(key)}:`;
        visit(obj[key], f.depth + 1);
        continue;
      }
    }
    out += f.keys === null ? "]" : "}";
    open?.delete(f.value);
    frames.pop();
  }
  return out;
}

/**
 * JSON with object keys sorted (UTF-16 code unit order) at every level, no whitespace.
 * Throws {@link CanonicalJsonTooDeep} past {@link MAX_DEPTH} levels below `depth`, and
 * {@link CanonicalJsonNotSerialisable} for cycles and BigInts.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  return write(value, depth, MAX_DEPTH);
}

/** The same text without a depth limit (audit hashes of whatever a caller sent). */
export function canonicalJsonUnbounded(value: unknown): string {
  return write(value, 0, Number.POSITIVE_INFINITY);
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
