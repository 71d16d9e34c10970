/**
 * SPIFFE ID parsing (SPIFFE ID standard, spiffe/spiffe standards/SPIFFE-ID.md):
 * - §2 the scheme is `spiffe` (lower case) followed by `://`;
 * - §2.1 the trust domain: lower-case letters, digits, `.`, `-`, `_` only; no userinfo, no
 *   port; at most 255 characters;
 * - §2.2 the path: segments separated by `/`, each non-empty, of letters, digits, `.`, `-`,
 *   `_`, never `.` or `..`; no trailing `/`;
 * - §2.3 no query, no fragment; §2.4 the whole ID at most 2048 bytes.
 * Parsing is strict and exact: an ID that a lenient URL parser would normalise is refused.
 */

export interface SpiffeId {
  /** The full ID, exactly as given (already canonical once parsed). */
  readonly id: string;
  readonly trustDomain: string;
  /** The path including its leading `/`, or "" for the trust domain's own ID. */
  readonly path: string;
}

const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const PREFIX = "spiffe://";

/** Why `value` is not a trust domain name (§2.1), or null when it is one. */
export function trustDomainProblem(value: string): string | null {
  if (value.length === 0) return "the trust domain is empty";
  if (value.length > MAX_TRUST_DOMAIN)
    return `the trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  if (!TRUST_DOMAIN.test(value))
    return "the trust domain may hold only lower-case letters, digits, '.', '-' and '_' (no port, no userinfo)";
  return null;
}

/** Parses a SPIFFE ID, or returns why it is not one. */
export function parseSpiffeId(value: string): SpiffeId | { problem: string } {
  if (Buffer.byteLength(value, "utf8") > MAX_ID_BYTES)
    return { problem: `a SPIFFE ID is at most ${MAX_ID_BYTES} bytes` };
  if (!value.startsWith(PREFIX)) return { problem: "a SPIFFE ID starts with spiffe://" };
  const rest = value.slice(PREFIX.length);
  if (rest.includes("?") || rest.includes("#")) return { problem: "a SPIFFE ID has no query or fragment" };
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem !== null) return { problem: tdProblem };
  const path = slash < 0 ? "" : rest.slice(slash);
  if (path !== "") {
    const segments = path.slice(1).split("/");
    for (const segment of segments) {
      if (segment === "") return { problem: "a SPIFFE ID path has no empty segment or trailing '/'" };
      if (segment === "." || segment === "..")
        return { problem: "a SPIFFE ID path has no '.' or '..' segment" };
      if (!SEGMENT.test(segment))
        return { problem: "path segments hold only letters, digits, '.', '-' and '_'" };
    }
  }
  return { id: value, trustDomain, path };
}

export function isSpiffeId(parsed: SpiffeId | { problem: string }): parsed is SpiffeId {
  return !("problem" in parsed);
}
