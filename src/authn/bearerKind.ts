/**
 * Which verifier judges a bearer token (RFC 6750 §2.1). Portcullis API keys announce
 * themselves by prefix; a JWT is routed by its unverified claims: a `task_id` claim marks a
 * task token (src/tasks/), a SPIFFE ID in `sub` a JWT-SVID (SPIFFE JWT-SVID §3), anything
 * else is an OAuth access token. Routing only picks the verifier; that verifier then checks
 * everything (signature, issuer, audience, expiry), so a forged claim gains nothing.
 *
 * The answer is remembered per token (bounded) so the steady state costs one map lookup.
 */
export type BearerKind = "api_key" | "task" | "jwt_svid" | "oauth";

const MEMO_SIZE = 10_000;
const memo = new Map<string, BearerKind>();

function payloadClaims(token: string): Record<string, unknown> | null {
  const first = token.indexOf(".");
  const second = first < 0 ? -1 : token.indexOf(".", first + 1);
  if (second < 0) return null;
  try {
    const json = Buffer.from(token.slice(first + 1, second), "base64url").toString("utf8");
    const claims: unknown = JSON.parse(json);
    return typeof claims === "object" && claims !== null && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

function classify(token: string): BearerKind {
  const claims = payloadClaims(token);
  if (claims === null) return "oauth";
  if (typeof claims.task_id === "string") return "task";
  if (typeof claims.sub === "string" && claims.sub.startsWith("spiffe://")) return "jwt_svid";
  return "oauth";
}

export function bearerKind(token: string): BearerKind {
  if (token.startsWith("pcl_")) return "api_key";
  const known = memo.get(token);
  if (known !== undefined) return known;
  const kind = classify(token);
  if (memo.size >= MEMO_SIZE) {
    const oldest = memo.keys().next().value;
    if (oldest !== undefined) memo.delete(oldest);
  }
  memo.set(token, kind);
  return kind;
}
