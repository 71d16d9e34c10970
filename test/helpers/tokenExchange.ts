/**
 * RFC 8693 token exchange against a test gateway's built-in authorization server
 * (docs/token-exchange.md): an agent client registered for the grant (RFC 7591), the exchange
 * request, and a person's access token obtained the way an MCP client obtains it — the v1
 * SDK's own OAuth flow (discovery from the 401, dynamic registration, PKCE, sign-in and
 * consent, code exchange with the resource).
 */
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type Credentials, signInAndConsent } from "./browserLogin.js";
import type { RunningGateway } from "./gateway.js";
import { SDK_REDIRECT, SdkClientState } from "./sdkOAuthClient.js";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const TASK_TYPE = "urn:portcullis:task";

/** A public client registered for token exchange only; returns its client_id. */
export async function registerExchangeClient(
  gw: Pick<RunningGateway, "url">,
  name = "task agent",
): Promise<string> {
  const res = await fetch(`${gw.url}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      grant_types: [TOKEN_EXCHANGE],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "none",
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
  return String(body.client_id);
}

export interface ExchangeAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** POST /token with the grant and `params` (strings; `authorization_details` may be an object). */
export async function exchange(
  gw: Pick<RunningGateway, "url">,
  params: Record<string, string | unknown[] | undefined>,
): Promise<ExchangeAnswer> {
  const form = new URLSearchParams({ grant_type: TOKEN_EXCHANGE });
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    form.set(k, typeof v === "string" ? v : JSON.stringify(v));
  }
  const res = await fetch(`${gw.url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A task's `authorization_details` (docs/token-exchange.md). */
export function taskDetails(entry: Record<string, unknown>): unknown[] {
  return [{ type: TASK_TYPE, ...entry }];
}

/** The claims of a JWT (not verified: for assertions on what the gateway issued). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<
    string,
    unknown
  >;
}

const REDIRECT = SDK_REDIRECT;

/**
 * A person's tokens for `server`'s endpoint, through the v1 SDK's OAuth flow as an MCP client
 * runs it given only the server URL. Returns the tokens and the client id the SDK registered.
 */
export async function sdkUserTokens(
  gw: Pick<RunningGateway, "endpoint">,
  user: Credentials,
  server: string,
): Promise<{ accessToken: string; refreshToken: string | undefined; clientId: string }> {
  const state = new SdkClientState("SDK agent");
  const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint(server)), { authProvider: state });
  const client = new Client({ name: "sdk-agent", version: "1" });
  try {
    await client.connect(transport);
    throw new Error("connected without signing in");
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  if (state.authorizationUrl === undefined) throw new Error("the SDK was not sent to sign in");
  const back = await signInAndConsent(state.authorizationUrl, {
    user,
    decision: "allow",
    stopAt: (url) => url.href.startsWith(REDIRECT),
  });
  const code = back.searchParams.get("code");
  if (code === null) throw new Error(`no authorization code: ${back.href}`);
  await transport.finishAuth(code);
  const tokens = state.saved;
  if (tokens === undefined || state.info === undefined) throw new Error("the SDK saved no tokens");
  return {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    clientId: state.info.client_id,
  };
}
