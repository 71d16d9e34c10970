/**
 * Authentication: turns the request's credential into a Principal, or a refusal with a
 * precise reason for the audit log. RFC 6750 §2.1 bearer header carrying either a
 * Portcullis API key or an OAuth access token.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Keyring } from "./keyring.js";
import type { AccessTokenVerifier, TokenCheck } from "./oauthToken.js";
import type { Principal } from "./principal.js";

export type AuthnResult =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      reason: string;
      credentialId: string | null;
      missing: boolean;
      detail?: Record<string, unknown>;
    };

const BEARER = /^Bearer +([\x21-\x7e]{1,8192})$/i;

export function bearerToken(headers: IncomingHttpHeaders): string | null | undefined {
  const h = headers.authorization;
  if (h === undefined) return undefined;
  const m = BEARER.exec(h);
  return m ? (m[1] as string) : null;
}

export function anonymousPrincipal(environment: string): Principal {
  return {
    id: "anonymous",
    kind: "anonymous",
    method: "anonymous",
    name: "anonymous",
    environment,
    credentialId: null,
    scopes: null,
    oauthScopes: null,
    groups: [],
    issuedAt: null,
    expiresAt: null,
  };
}

export function authenticate(
  headers: IncomingHttpHeaders,
  keyring: Keyring,
  anonymous: Principal | null,
  oauth: AccessTokenVerifier | null,
  resource: string,
): AuthnResult | Promise<AuthnResult> {
  const token = bearerToken(headers);
  if (token === undefined) {
    if (anonymous) return { ok: true, principal: anonymous };
    return { ok: false, reason: "no credential presented", credentialId: null, missing: true };
  }
  if (token === null)
    return { ok: false, reason: "malformed Authorization header", credentialId: null, missing: false };
  // Portcullis API keys announce themselves by prefix; anything else is an OAuth access token.
  if (oauth !== null && !token.startsWith("pcl_")) {
    const result = oauth.verify(token, resource);
    return result instanceof Promise ? result.then(fromTokenCheck) : fromTokenCheck(result);
  }
  const check = keyring.verify(token);
  if (check.ok) return check;
  return {
    ok: false,
    reason: check.reason,
    credentialId: check.credentialId,
    missing: false,
    ...(check.detail ? { detail: check.detail } : {}),
  };
}

function fromTokenCheck(check: TokenCheck): AuthnResult {
  return check.ok
    ? check
    : { ok: false, reason: check.reason, credentialId: check.credentialId, missing: false };
}
