/**
 * A person's OAuth access token from the built-in authorization server (config
 * `oauth: { mode: "builtin" }`), obtained as an MCP client obtains it: dynamic client
 * registration (RFC 7591) as a native app, the authorization code flow with PKCE (RFC 7636)
 * through sign-in and consent, and the code exchange with the resource indicator
 * (RFC 8707) naming the gateway endpoint the token is for.
 */
import { createHash, randomBytes } from "node:crypto";
import { type Credentials, signInAndConsent } from "./browserLogin.js";
import type { RunningGateway } from "./gateway.js";

/** A loopback redirect URI: native clients may use any port (RFC 8252 §7.3). */
const REDIRECT = "http://127.0.0.1/callback";

/** Adds a local user with `portcullis users add` and returns the generated password. */
export async function addUser(gw: RunningGateway, username: string): Promise<Credentials> {
  const added = await gw.cli(["users", "add", username]);
  return { username: String(added.username), password: String(added.password) };
}

export interface UserTokenRequest extends Credentials {
  /** The gateway server the token is for: its endpoint is the RFC 8707 resource. */
  server: string;
  /** Default "mcp", the scope every route requires unless configured otherwise. */
  scope?: string;
}

export async function userAccessToken(gw: RunningGateway, req: UserTokenRequest): Promise<string> {
  const resource = gw.endpoint(req.server);
  const reg = await fetch(`${gw.url}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "portcullis e2e agent",
      application_type: "native",
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  });
  const registered = (await reg.json()) as Record<string, string>;
  if (reg.status !== 201) throw new Error(`registration failed: ${reg.status} ${JSON.stringify(registered)}`);
  const clientId = registered.client_id as string;

  const verifier = randomBytes(32).toString("base64url");
  const auth = new URL(`${gw.url}/auth`);
  for (const [k, v] of Object.entries({
    client_id: clientId,
    response_type: "code",
    redirect_uri: REDIRECT,
    scope: req.scope ?? "mcp",
    resource,
    state: randomBytes(8).toString("hex"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  }))
    auth.searchParams.set(k, v);
  const back = await signInAndConsent(auth, { user: { username: req.username, password: req.password } });
  const code = back.searchParams.get("code");
  if (code === null) throw new Error(`no authorization code: ${back.href}`);

  const res = await fetch(`${gw.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: clientId,
      code_verifier: verifier,
      resource,
    }).toString(),
  });
  const token = (await res.json()) as Record<string, string>;
  if (res.status !== 200 || typeof token.access_token !== "string")
    throw new Error(`code exchange failed: ${res.status} ${JSON.stringify(token)}`);
  return token.access_token;
}
