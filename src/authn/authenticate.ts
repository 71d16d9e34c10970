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
import type { PeerCheck } from "./spiffe/x509Svid.js";

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

/**
 * `peer` is the verdict on the connection's TLS client certificate (an X.509-SVID, SPIFFE
 * X509-SVID §5), null when none was presented. The rules (docs/workload-identity.md):
 * a presented certificate that does not verify is refused whatever else the request carries;
 * without a bearer token a verified certificate authenticates (method `mtls`); with one the
 * bearer token decides, and when it names a workload it must name the certificate's workload.
 */
export function authenticate(
  headers: IncomingHttpHeaders,
  keyring: Keyring,
  anonymous: Principal | null,
  bearers: BearerVerifiers,
  resource: string,
  peer: PeerCheck | null = null,
): AuthnResult | Promise<AuthnResult> {
  if (peer === null) return authenticateBearer(headers, keyring, anonymous, bearers, resource);
  if (!peer.ok) return { ok: false, reason: peer.reason, credentialId: peer.credentialId, missing: false };
  if (headers.authorization === undefined) return { ok: true, principal: peer.principal };
  const result = authenticateBearer(headers, keyring, anonymous, bearers, resource);
  return result instanceof Promise ? result.then((r) => sameWorkload(r, peer)) : sameWorkload(result, peer);
}

/** A bearer token naming a workload over a connection whose certificate names another is refused. */
function sameWorkload(result: AuthnResult, peer: PeerCheck & { ok: true }): AuthnResult {
  if (!result.ok || result.principal.kind !== "workload" || result.principal.id === peer.principal.id)
    return result;
  return {
    ok: false,
    reason: `bearer token names workload ${result.principal.id} but the client certificate names ${peer.principal.id}`,
    credentialId: result.principal.credentialId,
    missing: false,
  };
}

function authenticateBearer(
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
    ...(check.detail ? { detail: check.detail } : {}),
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
