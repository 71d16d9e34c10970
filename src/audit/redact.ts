/**
 * The arguments of a call as the audit log keeps them (`audit.arguments`):
 *
 * - `full`: as received;
 * - `redacted` (default): values under secret-looking names masked, secrets found by the
 *   secretlint recommended rules (plus a rule for Portcullis's own key format) masked in
 *   every string, strings longer than `maxStringLength` and nested values larger than
 *   `maxValueBytes` (or deeper than `maxDepth`) replaced by their SHA-256;
 * - `hashed`: only the SHA-256 of the canonical JSON (proves which arguments were sent);
 * - `none`: nothing.
 *
 * secretlint costs about 0.1 ms per call (docs/audit.md), too much for the request path, so
 * the AuditWriter redacts in its background flush, one secretlint run per batch.
 */
import { createHash } from "node:crypto";
import { createEngine } from "@secretlint/node";
import { canonicalJson } from "../canonicalJson.js";

export type ArgumentsMode = "full" | "redacted" | "hashed" | "none";

export interface RedactionLimits {
  /** Longer strings are replaced by their SHA-256. */
  maxStringLength: number;
  /** Nested objects and arrays whose canonical JSON is larger are replaced by their SHA-256. */
  maxValueBytes: number;
  /** Values nested deeper are replaced by their SHA-256. */
  maxDepth: number;
}

export const DEFAULT_REDACTION_LIMITS: RedactionLimits = {
  maxStringLength: 256,
  maxValueBytes: 4096,
  maxDepth: 8,
};

/** Names whose value is a secret whatever it looks like. */
const SECRET_NAME =
  /pass(word|phrase|wd)?|secret|token|api[-_]?key|authori[sz]ation|credential|private[-_]?key|cookie|session[-_]?id/i;
/** secretlint only looks at strings at least this long: no recognised secret is shorter. */
const MIN_SCANNED = 8;

export const MASKED = "[secret]";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** `[sha256:<hex> <what>]`: what replaced a large value. */
function hashed(value: unknown, what: string): string {
  const json = typeof value === "string" ? value : canonicalJson(value);
  return `[sha256:${sha256(json)} ${what}]`;
}

/** A string leaf of a redacted value, to be scanned by secretlint. */
interface Leaf {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  text: string;
}

/**
 * The structural part of `redacted`, synchronous and cheap: names, sizes and depth. Returns
 * a new value (the input is never modified) and collects the strings left for secretlint.
 */
function structural(value: unknown, limits: RedactionLimits, leaves: Leaf[]): unknown {
  const root: Record<string, unknown> = {};
  walk(value, "", 0, limits, leaves, root, "v");
  return root.v;
}

function walk(
  value: unknown,
  name: string,
  depth: number,
  limits: RedactionLimits,
  leaves: Leaf[],
  holder: Record<string, unknown> | unknown[],
  key: string | number,
): void {
  const put = (v: unknown) => {
    (holder as Record<string | number, unknown>)[key] = v;
  };
  if (value === null || typeof value === "boolean") {
    put(value);
    return;
  }
  if (typeof value === "number") {
    put(SECRET_NAME.test(name) ? MASKED : value);
    return;
  }
  if (typeof value === "string") {
    if (SECRET_NAME.test(name)) {
      put(MASKED);
      return;
    }
    if (value.length > limits.maxStringLength) {
      put(hashed(value, `${value.length} characters`));
      return;
    }
    put(value);
    if (value.length >= MIN_SCANNED) leaves.push({ holder, key, text: value });
    return;
  }
  if (typeof value !== "object") {
    put(null);
    return;
  }
  const isArray = Array.isArray(value);
  if (depth > 0) {
    const size = Buffer.byteLength(canonicalJson(value));
    if (depth > limits.maxDepth || size > limits.maxValueBytes) {
      put(hashed(value, `${isArray ? `array of ${(value as unknown[]).length}` : "object"}, ${size} bytes`));
      return;
    }
  }
  if (isArray) {
    const out: unknown[] = [];
    put(out);
    (value as unknown[]).forEach((v, i) => {
      walk(v, name, depth + 1, limits, leaves, out, i);
    });
    return;
  }
  const out: Record<string, unknown> = {};
  put(out);
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    walk(v, k, depth + 1, limits, leaves, out, k);
  }
}

/**
 * Portcullis API keys (src/authn/keyFormat.ts). Matched here rather than as a secretlint rule:
 * the Node engine loads rules by package name only.
 */
const PORTCULLIS_KEY = /\bpcl_[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b/g;

/** Finds secrets in text: one secretlint run over many strings. Works offline. */
export interface SecretScanner {
  /** For each text, the [start, end) ranges of the secrets found in it. */
  scan(texts: readonly string[]): Promise<Array<Array<[number, number]>>>;
}

/** Between texts of one scan: no rule's pattern spans an empty line and a NUL. */
const SEPARATOR = "\n\u0000\n";

export async function createSecretScanner(): Promise<SecretScanner> {
  const engine = await createEngine({
    formatter: "json",
    color: false,
    maskSecrets: false,
    configFileJSON: {
      rules: [{ id: "@secretlint/secretlint-rule-preset-recommend" }],
    },
  });
  return {
    async scan(texts) {
      const found: Array<Array<[number, number]>> = texts.map((t) =>
        [...t.matchAll(PORTCULLIS_KEY)].map((m): [number, number] => [m.index, m.index + m[0].length]),
      );
      if (texts.length === 0) return found;
      const starts: number[] = [];
      let offset = 0;
      for (const t of texts) {
        starts.push(offset);
        offset += t.length + SEPARATOR.length;
      }
      const { ok, output } = await engine.executeOnContent({
        content: texts.join(SEPARATOR),
        filePath: "arguments.txt",
      });
      if (ok) return found;
      const results = JSON.parse(output) as Array<{ messages: Array<{ range: [number, number] }> }>;
      for (const r of results) {
        for (const { range } of r.messages) {
          // The text holding the start of the range (binary search over the offsets).
          let lo = 0;
          let hi = starts.length - 1;
          while (lo < hi) {
            const mid = (lo + hi + 1) >> 1;
            if ((starts[mid] as number) <= range[0]) lo = mid;
            else hi = mid - 1;
          }
          const base = starts[lo] as number;
          const len = (texts[lo] as string).length;
          found[lo]?.push([range[0] - base, Math.min(range[1] - base, len)]);
        }
      }
      return found;
    },
  };
}

function maskRanges(text: string, ranges: Array<[number, number]>): string {
  if (ranges.length === 0) return text;
  // Merge overlapping ranges, then mask right to left so earlier offsets stay valid.
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of sorted) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  let out = text;
  for (const [s, e] of merged.reverse()) out = out.slice(0, s) + MASKED + out.slice(e);
  return out;
}

/** Redacts the arguments of many records at once; one secretlint run per call of `redact`. */
export interface ArgumentsRedactor {
  readonly mode: ArgumentsMode;
  /** The stored form (JSON text, or null for no arguments / mode none) of each value. */
  redact(values: readonly unknown[]): Promise<Array<string | null>>;
}

export async function createArgumentsRedactor(
  mode: ArgumentsMode,
  limits: RedactionLimits = DEFAULT_REDACTION_LIMITS,
): Promise<ArgumentsRedactor> {
  const scanner = mode === "redacted" ? await createSecretScanner() : null;
  return {
    mode,
    async redact(values) {
      if (mode === "none") return values.map(() => null);
      if (mode === "full")
        return values.map((v) => (v === undefined || v === null ? null : JSON.stringify(v)));
      if (mode === "hashed") {
        return values.map((v) =>
          v === undefined || v === null ? null : JSON.stringify({ sha256: sha256(canonicalJson(v)) }),
        );
      }
      const leaves: Leaf[] = [];
      const out = values.map((v) => (v === undefined || v === null ? null : structural(v, limits, leaves)));
      if (scanner !== null && leaves.length > 0) await applyScan(scanner, leaves);
      return out.map((v) => (v === null ? null : JSON.stringify(v)));
    },
  };
}

async function applyScan(scanner: SecretScanner, leaves: Leaf[]): Promise<void> {
  const found = await scanner.scan(leaves.map((l) => l.text));
  leaves.forEach((leaf, i) => {
    const ranges = found[i] ?? [];
    if (ranges.length > 0) {
      (leaf.holder as Record<string | number, unknown>)[leaf.key] = maskRanges(leaf.text, ranges);
    }
  });
}

/**
 * One call's arguments in the `redacted` form, for other parts of the gateway that show
 * arguments (approval summaries, the console). Async: secretlint runs here.
 */
export async function redactArguments(
  args: unknown,
  limits: RedactionLimits = DEFAULT_REDACTION_LIMITS,
  scanner?: SecretScanner,
): Promise<unknown> {
  const leaves: Leaf[] = [];
  const out = structural(args, limits, leaves);
  if (leaves.length > 0) await applyScan(scanner ?? (await sharedScanner()), leaves);
  return out;
}

let shared: Promise<SecretScanner> | null = null;
function sharedScanner(): Promise<SecretScanner> {
  shared ??= createSecretScanner();
  return shared;
}
