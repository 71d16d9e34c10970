/**
 * The arguments of a call as the audit log keeps them (`audit.arguments`):
 *
 * - `full`: as received;
 * - `redacted` (default): values under secret-looking names masked, secrets found by the
 *   secretlint recommended rules (AWS access key ids included) and by the free-text patterns
 *   of src/audit/freeTextSecrets.ts (bearer tokens, JWTs, `password: X`, `-pX`, Portcullis
 *   keys) masked in every string, strings longer than `maxStringLength` and nested values
 *   larger than `maxValueBytes` (or deeper than `maxDepth`, however deep) replaced by their
 *   SHA-256;
 * - `hashed`: only the SHA-256 of the canonical JSON (proves which arguments were sent);
 * - `none`: nothing.
 *
 * secretlint costs about 0.1 ms per call (docs/audit.md), too much for the request path, so
 * the AuditWriter redacts in its background flush, one secretlint run per batch.
 *
 * Every value is redacted on its own: one that cannot be read as JSON (a cycle, a BigInt, a
 * throwing getter) becomes an {@link unrecorded} marker and never fails the others, so no
 * single record can stop the audit writer (src/audit/writer.ts).
 */
import { createHash } from "node:crypto";
import type { SecretLintProfiler } from "@secretlint/profiler";
import { CanonicalJsonNotSerialisable, canonicalJsonUnbounded } from "../core/canonicalJson.js";
import { freeTextSecrets } from "./freeTextSecrets.js";

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
export const MASKED = "[secret]";

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** `[sha256:<hex> <what>]`: what replaced a large value (`text`: a string, or canonical JSON). */
function hashed(text: string, what: string): string {
  return `[sha256:${sha256(text)} ${what}]`;
}

/**
 * What is stored for arguments that cannot be read as JSON: the reason, and the SHA-256 of
 * their canonical JSON when there is one (a value too deep for JSON.stringify still has one).
 */
export function unrecorded(value: unknown, err: unknown): string {
  const reason =
    err instanceof CanonicalJsonNotSerialisable ? err.message : "arguments could not be read as JSON";
  let digest: string | null = null;
  try {
    digest = sha256(canonicalJsonUnbounded(value));
  } catch {
    // No JSON text stands for it: the reason alone.
  }
  return JSON.stringify({ unrecorded: reason, sha256: digest });
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
    leaves.push({ holder, key, text: value });
    return;
  }
  if (typeof value !== "object") {
    put(null);
    return;
  }
  const isArray = Array.isArray(value);
  if (depth > 0) {
    // Unbounded: a value nested past any limit is hashed like a large one, never an error.
    const json = canonicalJsonUnbounded(value);
    const size = Buffer.byteLength(json);
    if (depth > limits.maxDepth || size > limits.maxValueBytes) {
      put(hashed(json, `${isArray ? `array of ${(value as unknown[]).length}` : "object"}, ${size} bytes`));
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
  // No prototype: a key named "__proto__" (an own property after JSON.parse, forwarded as
  // such) stays a property here too, instead of setting the prototype and vanishing from the record.
  const out: Record<string, unknown> = Object.create(null);
  put(out);
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    walk(v, k, depth + 1, limits, leaves, out, k);
  }
}

/** Finds secrets in text: one secretlint run over many strings. Works offline. */
export interface SecretScanner {
  /** For each text, the [start, end) ranges of the secrets found in it. */
  scan(texts: readonly string[]): Promise<Array<Array<[number, number]>>>;
}

/** Between texts of one scan: no rule's pattern spans an empty line and a NUL. */
const SEPARATOR = "\n\u0000\n";

/**
 * secretlint 12 profiles every run into a process-wide singleton that keeps every
 * performance mark and scans them all on each new one (secretlint/secretlint#1633): the cost
 * of a scan grows with the number of scans before it, and so does memory. Profiling is only
 * for `secretlint --profile`; the library's own switch (`setEnabled`, secretlint 13, which
 * needs Node 22) is used when present, else its marks are made a no-op. Either way no mark
 * reaches the performance timeline, so the profiler's observer never sees one.
 */
export function stopSecretlintProfiling(secretLintProfiler: SecretLintProfiler): void {
  const profiler = secretLintProfiler as SecretLintProfiler & { setEnabled?: (enabled: boolean) => void };
  if (typeof profiler.setEnabled === "function") profiler.setEnabled(false);
  else profiler.mark = () => {};
}

export async function createSecretScanner(): Promise<SecretScanner> {
  // Loaded on first use: secretlint takes ~0.25 s of CPU to load, which CLI commands that
  // write no audit record (`keys list`, `--help`) should not pay.
  const [{ createEngine }, { secretLintProfiler }] = await Promise.all([
    import("@secretlint/node"),
    import("@secretlint/profiler"),
  ]);
  stopSecretlintProfiling(secretLintProfiler);
  const engine = await createEngine({
    formatter: "json",
    color: false,
    maskSecrets: false,
    configFileJSON: {
      rules: [
        {
          id: "@secretlint/secretlint-rule-preset-recommend",
          // An AWS access key id alone is enough to name the account and the user it belongs to.
          rules: [{ id: "@secretlint/secretlint-rule-aws", options: { enableIDScanRule: true } }],
        },
      ],
    },
  });
  return {
    async scan(texts) {
      const found: Array<Array<[number, number]>> = texts.map(freeTextSecrets);
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
      /** Each value on its own: one that cannot be read is a marker, never a failed batch. */
      const each = (v: unknown, form: (v: unknown) => string): string | null => {
        if (v === undefined || v === null) return null;
        try {
          return form(v);
        } catch (err) {
          return unrecorded(v, err);
        }
      };
      if (mode === "full") {
        // JSON.stringify recurses (a deeply nested value overflows it); canonical JSON does not,
        // and names what else is wrong (a cycle, a BigInt).
        return values.map((v) =>
          each(v, (x) => {
            try {
              return JSON.stringify(x) ?? "null";
            } catch {
              return canonicalJsonUnbounded(x);
            }
          }),
        );
      }
      if (mode === "hashed") {
        return values.map((v) =>
          each(v, (x) => JSON.stringify({ sha256: sha256(canonicalJsonUnbounded(x)) })),
        );
      }
      const leaves: Leaf[] = [];
      const structured = values.map((v): { value: unknown } | string | null => {
        if (v === undefined || v === null) return null;
        try {
          const found: Leaf[] = [];
          const value = structural(v, limits, found);
          for (const leaf of found) leaves.push(leaf);
          return { value };
        } catch (err) {
          return unrecorded(v, err);
        }
      });
      if (scanner !== null && leaves.length > 0) await applyScan(scanner, leaves);
      return structured.map((r, i) =>
        r === null || typeof r === "string" ? r : each(values[i], () => JSON.stringify(r.value)),
      );
    },
  };
}

/** Masks what the scanner finds; when it fails, every string it was given is hashed (fail closed). */
async function applyScan(scanner: SecretScanner, leaves: Leaf[]): Promise<void> {
  let found: Array<Array<[number, number]>>;
  try {
    found = await scanner.scan(leaves.map((l) => l.text));
  } catch {
    for (const leaf of leaves) {
      (leaf.holder as Record<string | number, unknown>)[leaf.key] = hashed(
        leaf.text,
        `${leaf.text.length} characters, not scanned`,
      );
    }
    return;
  }
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
