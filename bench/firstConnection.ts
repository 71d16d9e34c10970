/**
 * The first connection of a new MCP client to the built-in authorization server, timed end
 * to end: dynamic registration, authorization (the user already signed in earlier, so the
 * browser session is reused; the consent form is posted), code exchange with PKCE, and the
 * first tools/call through the gateway. Sign-in itself (scrypt) is excluded on purpose: it
 * happens once per browser session, not per client.
 */
import { createHash, randomBytes } from "node:crypto";
import { CookieJar } from "../test/fixtures/oidc-idp.js";
import { signInAndConsent } from "../test/helpers/browserLogin.js";

const REDIRECT = "http://127.0.0.1/callback";

async function newClientFirstCall(
  base: string,
  resource: string,
  jar: CookieJar,
  user: { username: string; password: string },
): Promise<string> {
  const reg = await fetch(`${base}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "bench agent",
      application_type: "native",
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  });
  const { client_id } = (await reg.json()) as { client_id: string };
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const auth = new URL(`${base}/auth`);
  for (const [k, v] of Object.entries({
    client_id,
    response_type: "code",
    redirect_uri: REDIRECT,
    scope: "mcp",
    resource,
    state: randomBytes(8).toString("hex"),
    code_challenge: challenge,
    code_challenge_method: "S256",
  }))
    auth.searchParams.set(k, v);
  const callback = await signInAndConsent(auth, {
    user,
    jar,
    stopAt: (url) => url.href.startsWith(REDIRECT),
  });
  const code = callback.searchParams.get("code");
  if (!code) throw new Error(`no code: ${callback.href}`);
  const token = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id,
      resource,
    }).toString(),
  });
  const { access_token } = (await token.json()) as { access_token: string };
  const call = await fetch(resource, {
    method: "POST",
    headers: {
      authorization: `Bearer ${access_token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": "echo",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name: "echo",
        arguments: { text: "first" },
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientCapabilities": {},
          "io.modelcontextprotocol/clientInfo": { name: "bench", version: "1" },
        },
      },
    }),
  });
  const text = await call.text();
  if (call.status !== 200 || !text.includes("first"))
    throw new Error(`first call failed: ${call.status} ${text.slice(0, 200)}`);
  return access_token;
}

export interface FirstConnection {
  runs: number;
  p50Ms: number;
  p90Ms: number;
  /** Steps included in each run. */
  steps: string[];
  /** An access token for `resource` from the last run, for the per-request OAuth rows. */
  accessToken: string;
}

export async function measureFirstConnection(
  base: string,
  resource: string,
  user: { username: string; password: string },
  runs: number,
): Promise<FirstConnection> {
  const jar = new CookieJar();
  await newClientFirstCall(base, resource, jar, user); // signs in once: the browser session
  await newClientFirstCall(base, resource, jar, user); // warm-up
  const samples: number[] = [];
  let accessToken = "";
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    accessToken = await newClientFirstCall(base, resource, jar, user);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (p: number) =>
    samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] as number;
  return {
    runs,
    p50Ms: Math.round(at(50) * 100) / 100,
    p90Ms: Math.round(at(90) * 100) / 100,
    accessToken,
    steps: [
      "dynamic client registration",
      "authorization (session reused, consent posted)",
      "token (PKCE)",
      "first tools/call",
    ],
  };
}
