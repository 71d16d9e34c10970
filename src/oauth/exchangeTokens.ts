/**
 * RFC 8693 §2.1 — the `subject_token` and `actor_token` of a token exchange, verified into the
 * Principal they stand for. Accepted (token type URIs, RFC 8693 §3):
 * - `urn:ietf:params:oauth:token-type:access_token`: an access token of this authorization
 *   server (a person's, or a machine client's; verified by ./builtinTokenVerifier.ts: signature,
 *   expiry, grant or client revocation, and an audience that is one of this gateway's MCP
 *   endpoints), a task token (src/tasks/, re-delegation), or a Portcullis API key (verified
 *   through the keyring; `urn:portcullis:params:oauth:token-type:api_key` names it explicitly);
 * - `urn:ietf:params:oauth:token-type:jwt`: a SPIFFE JWT-SVID (its verifier, when trust domains
 *   are configured).
 * Anything else, or a token that fails its verifier, is refused; RFC 8693 §2.2.2 makes that
 * `invalid_request`. The precise reason goes to the audit record only.
 */
import { bearerKind } from "../authn/bearerKind.js";
import type { KeyCheck } from "../authn/keyring.js";
import type { AccessTokenVerifier, TokenCheck } from "../authn/oauthToken.js";
import type { Principal } from "../core/principal.js";

/** RFC 8693 §2.1 grant type. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const TOKEN_TYPE_ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";
export const TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt";
export const TOKEN_TYPE_API_KEY = "urn:portcullis:params:oauth:token-type:api_key";

/** The gateway's verifiers an exchanged token may be judged by, besides this AS's own (gateway.ts). */
export interface ExchangeVerifiers {
  /** Portcullis API keys (the gateway's keyring): refreshed from the change feed, then verified. */
  apiKeys: { refresh(): Promise<void> | undefined; verify(key: string): KeyCheck };
  /** Task tokens (src/tasks/verifier.ts): re-delegation. */
  taskTokens: AccessTokenVerifier;
  /** SPIFFE JWT-SVIDs (src/authn/spiffe/); null when no trust domain is configured. */
  jwtSvid: AccessTokenVerifier | null;
}

/** Every verifier an exchanged token may be judged by. */
export interface ExchangeTokenVerifiers extends ExchangeVerifiers {
  /** This authorization server's access tokens. */
  oauth: AccessTokenVerifier;
}

export type VerifiedToken =
  | {
      ok: true;
      principal: Principal;
      /** The MCP endpoint the token was issued for; null for an API key (no audience). */
      audience: string | null;
      /** An access token's grant at this authorization server (`grant_id`); its revocation ends the task. */
      grantId: string | null;
    }
  | {
      ok: false;
      reason: string;
      credentialId: string | null;
      /** The token could not be judged (store unreachable): 503, never a refusal. */
      unavailable?: true;
    };

/** A JWT's claims, unverified: only read to route it, or after its verifier accepted it. */
function claimsOf(token: string): Record<string, unknown> {
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The unverified `aud` values of a JWT (only to pick which audience to verify it for). */
function claimedAudiences(claims: Record<string, unknown>): string[] {
  const aud = claims.aud;
  if (typeof aud === "string") return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === "string") : [];
}

function fromCheck(check: TokenCheck, audience: string, grantId: string | null): VerifiedToken {
  if (check.ok) return { ok: true, principal: check.principal, audience, grantId };
  return {
    ok: false,
    reason: check.reason,
    credentialId: check.credentialId,
    ...(check.unavailable ? { unavailable: true } : {}),
  };
}

/**
 * Verifies one exchanged token. A JWT is verified for the audience it claims, which must be
 * one of `resources` (the verifier then checks that claim with the signature); `preferred`
 * (the requested resource) is tried first when the token names several.
 */
export async function verifyExchangeToken(
  token: string,
  tokenType: unknown,
  verifiers: ExchangeTokenVerifiers,
  resources: ReadonlySet<string>,
  preferred: string,
): Promise<VerifiedToken> {
  const refuse = (reason: string): VerifiedToken => ({ ok: false, reason, credentialId: null });
  if (token.length === 0 || token.length > 8192) return refuse("token is empty or too long");
  const kind = bearerKind(token);
  if (tokenType === TOKEN_TYPE_API_KEY || (tokenType === TOKEN_TYPE_ACCESS_TOKEN && kind === "api_key")) {
    if (kind !== "api_key") return refuse("token is not a Portcullis API key");
    // A key created or revoked elsewhere a moment ago: follow the change feed first.
    await verifiers.apiKeys.refresh();
    const check = verifiers.apiKeys.verify(token);
    if (check.ok) return { ok: true, principal: check.principal, audience: null, grantId: null };
    return {
      ok: false,
      reason: `API key refused: ${check.reason}`,
      credentialId: check.credentialId,
      ...(check.unavailable ? { unavailable: true } : {}),
    };
  }
  let verifier: AccessTokenVerifier | null;
  if (tokenType === TOKEN_TYPE_ACCESS_TOKEN) {
    if (kind === "jwt_svid") return refuse(`a JWT-SVID must be sent as ${TOKEN_TYPE_JWT}`);
    verifier = kind === "task" ? verifiers.taskTokens : verifiers.oauth;
  } else if (tokenType === TOKEN_TYPE_JWT) {
    if (kind !== "jwt_svid") return refuse(`only JWT-SVIDs are accepted as ${TOKEN_TYPE_JWT}`);
    verifier = verifiers.jwtSvid;
    if (verifier === null) return refuse("JWT-SVIDs are not accepted: no SPIFFE trust domain is configured");
  } else {
    return refuse(`unsupported token type ${String(tokenType).slice(0, 100)}`);
  }
  const claims = claimsOf(token);
  const claimed = claimedAudiences(claims).filter((a) => resources.has(a));
  const audience = claimed.includes(preferred) ? preferred : claimed[0];
  if (audience === undefined) return refuse("token audience is not one of this gateway's MCP endpoints");
  // Read only once the verifier accepted the token (its signature covers the claim).
  const grantId =
    verifier === verifiers.oauth && typeof claims.grant_id === "string" ? claims.grant_id : null;
  return fromCheck(await verifier.verify(token, audience), audience, grantId);
}
