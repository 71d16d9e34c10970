/**
 * The `requestState` the gateway hands a 2026-07-28 client with an `input_required` result
 * (MCP 2026-07-28, basic/patterns/mrtr, "Server Requirements"): the client echoes it on its
 * retry, so it is attacker-controlled input and is integrity-protected with HMAC-SHA-256
 * under a key derived from the server secret. Inside, as the spec recommends against replay:
 * the authenticated principal, an expiry, and the originating request (server, method,
 * target, arguments hash). Single use is enforced server-side by the approval itself.
 *
 * Wire form: `pcr1.<base64url(JSON payload)>.<base64url(HMAC)>`. Clients must treat it as
 * opaque; the payload is readable but carries nothing secret.
 */
import { mac, macValid } from "./keys.js";

export const REQUEST_STATE_PREFIX = "pcr1.";

export interface RequestStateClaims {
  /** Approval id. */
  a: string;
  /** Principal id of the caller. */
  p: string;
  /** Server. */
  s: string;
  /** JSON-RPC method. */
  m: string;
  /** Tool or prompt name, or resource URI. */
  t: string;
  /** Arguments hash (hex SHA-256). */
  h: string;
  /** Expiry, epoch seconds. */
  e: number;
}

export function encodeRequestState(key: Buffer, claims: RequestStateClaims): string {
  const body = Buffer.from(JSON.stringify(claims), "utf8").toString("base64url");
  return `${REQUEST_STATE_PREFIX}${body}.${mac(key, `${REQUEST_STATE_PREFIX}${body}`)}`;
}

/** True when the value is one of ours (not an upstream server's own requestState). */
export function isGatewayRequestState(value: string): boolean {
  return value.startsWith(REQUEST_STATE_PREFIX);
}

/** The claims, or null when the value was not issued by this gateway (or was altered). */
export function decodeRequestState(key: Buffer, value: string): RequestStateClaims | null {
  if (!isGatewayRequestState(value) || value.length > 4096) return null;
  const dot = value.lastIndexOf(".");
  if (dot <= REQUEST_STATE_PREFIX.length) return null;
  const signed = value.slice(0, dot);
  if (!macValid(key, signed, value.slice(dot + 1))) return null;
  try {
    const claims = JSON.parse(
      Buffer.from(signed.slice(REQUEST_STATE_PREFIX.length), "base64url").toString("utf8"),
    ) as RequestStateClaims;
    const strings = [claims.a, claims.p, claims.s, claims.m, claims.t, claims.h];
    if (strings.some((v) => typeof v !== "string") || typeof claims.e !== "number") return null;
    return claims;
  } catch {
    return null;
  }
}
