/**
 * Console sign-in as an OAuth client of the built-in authorization server: the
 * authorization code flow with PKCE (OAuth 2.1 §4.1, RFC 7636 S256), run server side as a
 * confidential client (client_secret_basic), `state` and `nonce` kept in a short signed
 * cookie, the issuer checked on the authorization response (RFC 9207) and the ID token
 * verified against the AS's JWKS (OpenID Connect Core §3.1.3.7). The users, sign-in pages,
 * throttling and upstream federation are the authorization server's own.
 */
import { createHash, randomBytes } from "node:crypto";
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { FirstPartyClient } from "../oauth/authorizationServer.js";
import { consoleKey } from "./session.js";

export const CONSOLE_CLIENT_ID = "portcullis-console";
/** The console's name on the sign-in page and in audit records (its registered client_name). */
export const CONSOLE_CLIENT_NAME = "Portcullis console";
export const CALLBACK_PATH = "/console/callback";
/** How long a user has to sign in on the AS pages. */
export const LOGIN_STATE_SECONDS = 600;

/** The console's registration at the built-in AS; the secret derives from the server secret. */
export function consoleClient(secret: Buffer, baseUrl: string): FirstPartyClient {
  return {
    clientId: CONSOLE_CLIENT_ID,
    clientName: CONSOLE_CLIENT_NAME,
    clientSecret: consoleKey(secret, "client-secret").toString("base64url"),
    redirectUri: `${baseUrl}${CALLBACK_PATH}`,
  };
}

export interface LoginState {
  state: string;
  nonce: string;
  verifier: string;
  exp: number;
}

export function newLoginState(now = Date.now()): LoginState {
  const r = () => randomBytes(32).toString("base64url");
  return { state: r(), nonce: r(), verifier: r(), exp: Math.floor(now / 1000) + LOGIN_STATE_SECONDS };
}

/** The authorization request (OAuth 2.1 §4.1.1): `openid` only, no resource. */
export function authorizationUrl(issuer: string, client: FirstPartyClient, login: LoginState): string {
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: client.clientId,
    response_type: "code",
    redirect_uri: client.redirectUri,
    scope: "openid",
    state: login.state,
    nonce: login.nonce,
    code_challenge: createHash("sha256").update(login.verifier).digest("base64url"),
    code_challenge_method: "S256",
  }).toString();
  return url.href;
}

export class SignInError extends Error {
  override name = "SignInError";
}

/** Redeems the code and returns the verified subject. */
export class CodeRedeemer {
  private jwks: JWTVerifyGetKey | null = null;
  private jwksIssuer = "";

  async redeem(
    issuer: string,
    client: FirstPartyClient,
    login: LoginState,
    query: { code?: string; state?: string; iss?: string; error?: string },
  ): Promise<string> {
    if (query.state !== login.state) throw new SignInError("state mismatch");
    // RFC 9207 §2.4: the response must come from the expected issuer.
    if (query.iss !== issuer) throw new SignInError("issuer mismatch in the authorization response");
    if (query.error !== undefined) throw new SignInError(`authorization refused: ${query.error}`);
    if (query.code === undefined) throw new SignInError("no authorization code");
    const res = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
        authorization: `Basic ${Buffer.from(
          `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`,
        ).toString("base64")}`,
      },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: query.code,
        redirect_uri: client.redirectUri,
        code_verifier: login.verifier,
      }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status !== 200 || typeof body.id_token !== "string")
      throw new SignInError(`code exchange failed: ${res.status} ${String(body.error ?? "")}`);
    if (this.jwks === null || this.jwksIssuer !== issuer) {
      this.jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
      this.jwksIssuer = issuer;
    }
    const { payload } = await jwtVerify(body.id_token, this.jwks, {
      issuer,
      audience: client.clientId,
      algorithms: ["ES256"],
    });
    if (payload.nonce !== login.nonce) throw new SignInError("nonce mismatch");
    if (typeof payload.sub !== "string" || payload.sub === "") throw new SignInError("no subject");
    return payload.sub;
  }
}
