/**
 * Authentication: turns the request's credential into a Principal, or a refusal with a
 * precise reason for the audit log. RFC 6750 §2.1 bearer header carrying either a
 * Portcullis API key or an OAuth access token.
 */
import type { IncomingHttpHeaders } from "node:http";
import { isStoreOutage, outageReason } from "../core/outage.js";
import type { Principal } from "../core/principal.js";
import { bearerKind } from "./bearerKind.js";
import type { Keyring } from "./keyring.js";
import type { AccessTokenVerifier, TokenCheck } from "./oauthToken.js";

/**
 * The verifiers of bearer tokens other than API keys; null where the method is not
 * configured (its tokens are then refused; a JWT-SVID goes to the OAuth verifier when no
 * trust domain is configured).
 */
export interface BearerVerifiers {
  oauth: AccessTokenVerifier | null;
  /** Task tokens (src/tasks/). */
  task: AccessTokenVerifier | null;
  /** SPIFFE JWT-SVIDs (src/authn/spiffe/). */
  jwtSvid: AccessTokenVerifier | null;
}

export type AuthnResult =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      reason: string;
      credentialId: string | null;
      missing: boolean;
      detail?: Record<string, unknown>;
      /** The credential could not be judged (store unreachable): answer 503, never 401. */
      unavailable?: true;
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
  bearers: BearerVerifiers,
  resource: string,
): AuthnResult | Promise<AuthnResult> {
  const token = bearerToken(headers);
  if (token === undefined) {
    if (anonymous) return { ok: true, principal: anonymous };
    return { ok: false, reason: "no credential presented", credentialId: null, missing: true };
  }
  if (token === null)
    return { ok: false, reason: "malformed Authorization header", credentialId: null, missing: false };
  const kind = bearerKind(token);
  const verifier =
    kind === "api_key"
      ? null
      : kind === "task"
        ? bearers.task
        : kind === "jwt_svid"
          ? (bearers.jwtSvid ?? bearers.oauth)
          : bearers.oauth;
  // A token no configured verifier takes is judged as a (malformed) API key, and refused.
  if (verifier !== null) {
    let result: TokenCheck | Promise<TokenCheck>;
    try {
      result = verifier.verify(token, resource);
    } catch (err) {
      return unavailableOnOutage(err);
    }
    return result instanceof Promise
      ? result.then(fromTokenCheck, unavailableOnOutage)
      : fromTokenCheck(result);
  }
  const check = keyring.verify(token);
  if (check.ok) return check;
  return {
    ok: false,
    reason: check.reason,
    credentialId: check.credentialId,
    missing: false,
    ...(check.detail ? { detail: check.detail } : {}),
    ...(check.unavailable ? { unavailable: true } : {}),
  };
}

function fromTokenCheck(check: TokenCheck): AuthnResult {
  if (check.ok) return check;
  return {
    ok: false,
    reason: check.reason,
    credentialId: check.credentialId,
    missing: false,
    ...(check.unavailable ? { unavailable: true } : {}),
  };
}

/**
 * A verifier that threw because the store is unreachable could not judge the credential:
 * that is an `unavailable` refusal (503), never an invalid one. Other faults propagate (500).
 */
function unavailableOnOutage(err: unknown): AuthnResult {
  if (!isStoreOutage(err)) throw err;
  return { ok: false, reason: outageReason(err), credentialId: null, missing: false, unavailable: true };
}
