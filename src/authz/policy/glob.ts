/**
 * Name patterns in rule `match` fields (`servers`, `tools`): `*` matches any run of
 * characters (including none); everything else is literal. Exact names become one Set
 * lookup, the remaining globs one anchored regular expression, both built at compile time.
 */

import { normaliseName } from "./normalise.js";

export type NameTest = (name: string) => boolean;

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

/**
 * Compiles patterns into a test. With `normalised`, patterns are normalised here and the
 * caller must pass the normalised name (see normalise.ts); otherwise names compare exactly.
 */
export function compileNamePatterns(patterns: readonly string[], normalised: boolean): NameTest {
  const forms = normalised ? patterns.map(normaliseName) : patterns;
  if (forms.includes("*")) return () => true;
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const p of forms) {
    if (p.includes("*")) globs.push(p.split("*").map(escapeRegExp).join(".*"));
    else exact.add(p);
  }
  if (globs.length === 0) {
    if (exact.size === 1) {
      const [only] = exact;
      return (name) => name === only;
    }
    return (name) => exact.has(name);
  }
  const re = new RegExp(`^(?:${globs.join("|")})$`, "su");
  if (exact.size === 0) return (name) => re.test(name);
  return (name) => exact.has(name) || re.test(name);
}

/**
 * SPIFFE ID patterns (`match.workloads`): exact IDs are one Set lookup; in a pattern `**`
 * matches any run of characters (across `/`), `*` any run within one path segment. The
 * trust domain is always literal (the schema allows no `*` in it).
 */
export function compileWorkloadPatterns(patterns: readonly string[]): NameTest {
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const p of patterns) {
    if (!p.includes("*")) exact.add(p);
    else
      globs.push(
        p
          .split("**")
          .map((part) => part.split("*").map(escapeRegExp).join("[^/]*"))
          .join(".*"),
      );
  }
  if (globs.length === 0) return (id) => exact.has(id);
  const re = new RegExp(`^(?:${globs.join("|")})$`, "su");
  return (id) => exact.has(id) || re.test(id);
}
