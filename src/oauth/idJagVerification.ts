/**
 * Verification of an Identity Assertion JWT Authorization Grant (ID-JAG,
 * draft-ietf-oauth-identity-assertion-authz-grant §3.1 and §4.4.1; MCP "Enterprise-Managed
 * Authorization" §5.1 and §7.4.1, §7.6.2) presented as an RFC 7523 §2.1 `assertion`:
 * - the JWS header `typ` is `oauth-id-jag+jwt` (so an ID token or access token of the same
 *   IdP, signed with the same keys, is never taken for one);
 * - `iss` is a configured enterprise IdP, and the signature verifies with its keys under an
 *   explicit algorithm allow-list (never `none` or HMAC);
 * - `aud` is exactly this authorization server's issuer;
 * - `sub`, `client_id`, `jti`, `iat` and `exp` are present; `exp` is not past and `iat` not in
 *   the future (30 s tolerance), and the lifetime `exp − iat` is bounded;
 * - `resource` (the MCP server) and `scope` are returned for the caller to match.
 * Each failure is an {@link IdJagRejected} with the RFC 6749 §5.2 code the client gets and
 * the precise reason the audit record keeps. Pure apart from fetching the IdP's keys.
 */
import { decodeJwt, decodeProtectedHeader, type JWTPayload, errors as joseErrors, jwtVerify } from "jose";
import { IdpKeysUnavailable, type TrustedIdp } from "./enterpriseIdps.js";

export const ID_JAG_TYP = "oauth-id-jag+jwt";
export const CLOCK_TOLERANCE_SECONDS = 30;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_ASSERTION_BYTES = 16 * 1024;

export type IdJagErrorCode = "invalid_grant" | "invalid_target" | "invalid_scope" | "unauthorized_client";

/** A refused assertion: `code` goes on the wire, `reason` to the audit trail only. */
export class IdJagRejected extends Error {
  override name = "IdJagRejected";
  constructor(
    readonly code: IdJagErrorCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** What a verified ID-JAG asserts. */
export interface IdJagClaims {
  issuer: string;
  subject: string;
  /** The client the IdP issued it to, as identified at this authorization server. */
  clientId: string;
  jti: string;
  /** Epoch seconds. */
  issuedAt: number;
  expiresAt: number;
  /** The MCP server (RFC 9728 resource identifier), when the assertion names one. */
  resource: string | null;
  /** The `scope` claim split, or null when the assertion has none. */
  scopes: string[] | null;
  email: string | null;
  groups: string[];
}

export interface IdJagVerificationSettings {
  /** This authorization server's issuer: the only acceptable `aud`. */
  audience: string;
  idps: ReadonlyMap<string, TrustedIdp>;
  maxLifetimeSeconds: number;
  now?: () => number;
}

function typOf(assertion: string): string | null {
  try {
    const typ = decodeProtectedHeader(assertion).typ;
    return typeof typ === "string" ? typ : null;
  } catch {
    throw new IdJagRejected("invalid_grant", "the assertion's JWS header is not valid JSON");
  }
}

/** RFC 7515 §4.1.9: `typ` compares case-insensitively, `application/` may be omitted. */
function isIdJagTyp(typ: string | null): boolean {
  if (typ === null) return false;
  const t = typ.toLowerCase();
  return t === ID_JAG_TYP || t === `application/${ID_JAG_TYP}`;
}

function describe(err: unknown): string {
  if (err instanceof joseErrors.JOSEError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export async function verifyIdJag(
  assertion: string,
  settings: IdJagVerificationSettings,
): Promise<IdJagClaims> {
  if (assertion.length > MAX_ASSERTION_BYTES || !COMPACT_JWS.test(assertion)) {
    throw new IdJagRejected("invalid_grant", "the assertion is not a signed JWT (compact JWS)");
  }
  const typ = typOf(assertion);
  if (!isIdJagTyp(typ)) {
    throw new IdJagRejected(
      "invalid_grant",
      `the assertion's JWS typ is ${typ === null ? "absent" : JSON.stringify(typ.slice(0, 64))}, not ${ID_JAG_TYP}`,
    );
  }
  let unverified: JWTPayload;
  try {
    unverified = decodeJwt(assertion);
  } catch {
    throw new IdJagRejected("invalid_grant", "the assertion's claims are not a JSON object");
  }
  const issuer = typeof unverified.iss === "string" ? unverified.iss : null;
  const idp = issuer === null ? undefined : settings.idps.get(issuer);
  if (idp === undefined) {
    throw new IdJagRejected(
      "invalid_grant",
      `the assertion's issuer ${issuer === null ? "(none)" : JSON.stringify(issuer.slice(0, 200))} is not a trusted enterprise IdP`,
    );
  }

  let payload: JWTPayload & Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(assertion, idp.keys, {
      issuer: idp.issuer,
      typ: ID_JAG_TYP,
      algorithms: [...idp.algorithms],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date((settings.now ?? Date.now)()),
      requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
    }));
  } catch (err) {
    if (err instanceof IdpKeysUnavailable) throw new IdJagRejected("invalid_grant", err.message);
    throw new IdJagRejected("invalid_grant", `ID-JAG from ${idp.issuer} rejected: ${describe(err)}`);
  }

  // §7.6.2: `aud` identifies this authorization server, and nothing else.
  const aud = payload.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (audiences.length !== 1 || audiences[0] !== settings.audience) {
    throw new IdJagRejected(
      "invalid_grant",
      `the ID-JAG's aud ${JSON.stringify(aud)} is not this authorization server (${settings.audience})`,
    );
  }
  const now = Math.floor((settings.now ?? Date.now)() / 1000);
  const iat = payload.iat as number;
  const exp = payload.exp as number;
  if (iat > now + CLOCK_TOLERANCE_SECONDS) {
    throw new IdJagRejected("invalid_grant", `the ID-JAG's iat ${iat} is in the future`);
  }
  if (exp - iat > settings.maxLifetimeSeconds) {
    throw new IdJagRejected(
      "invalid_grant",
      `the ID-JAG lives ${exp - iat} s (exp − iat), more than the ${settings.maxLifetimeSeconds} s accepted`,
    );
  }
  const strings = { sub: payload.sub, client_id: payload.client_id, jti: payload.jti };
  for (const [name, value] of Object.entries(strings)) {
    if (typeof value !== "string" || value === "" || value.length > 255) {
      throw new IdJagRejected("invalid_grant", `the ID-JAG's ${name} is not a string of 1-255 characters`);
    }
  }
  const resource = payload.resource;
  if (resource !== undefined && typeof resource !== "string") {
    throw new IdJagRejected("invalid_grant", "the ID-JAG's resource claim is not a single string");
  }
  const scope = payload.scope;
  if (scope !== undefined && typeof scope !== "string") {
    throw new IdJagRejected("invalid_grant", "the ID-JAG's scope claim is not a string");
  }
  return {
    issuer: idp.issuer,
    subject: payload.sub as string,
    clientId: payload.client_id as string,
    jti: payload.jti as string,
    issuedAt: iat,
    expiresAt: exp,
    resource: resource ?? null,
    scopes: scope === undefined ? null : scope.split(" ").filter(Boolean),
    email: typeof payload.email === "string" ? payload.email : null,
    groups: Array.isArray(payload.groups) ? payload.groups.map(String) : [],
  };
}
