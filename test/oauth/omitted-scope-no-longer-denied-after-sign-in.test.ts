/**
 * Regression: an authorization request without a `scope` parameter made the user sign in and
 * then came back `access_denied` (oidc-provider: "no scope was granted"); the MCP conformance
 * suite's authorization-code-grant scenario sends no scope. RFC 6749 §3.3 lets the server
 * either use a pre-defined default or fail with invalid_scope; the built-in server now defaults
 * to the requested MCP endpoint's scopes (its protected resource metadata `scopes_supported`,
 * what the MCP scope selection strategy requests anyway), limited to the client's registered
 * `scope` allow-list.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt } from "jose";
import {
  authorizationUrl,
  authorize,
  type Harness,
  pkce,
  REDIRECT_WITH_PORT,
  registerClient,
  startHarness,
  tokenRequest,
} from "./asHarness.js";

async function grantWithoutScope(h: Harness, clientId: string): Promise<Record<string, unknown>> {
  const p = pkce();
  const start = authorizationUrl(h, clientId, p);
  start.searchParams.delete("scope");
  const back = await authorize(start);
  assert.equal(back.searchParams.get("error"), null, back.href);
  const code = back.searchParams.get("code");
  assert.ok(code, back.href);
  const res = await tokenRequest(h, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_WITH_PORT,
    client_id: clientId,
    code_verifier: p.verifier,
    resource: h.resources[0],
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

describe("an authorization request that omits scope (RFC 6749 §3.3)", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it("is granted the resource's scopes after sign-in and consent instead of access_denied", async () => {
    const tokens = await grantWithoutScope(h, await registerClient(h));
    assert.equal(tokens.scope, "mcp:tools mcp:tools:read");
    const claims = decodeJwt(String(tokens.access_token));
    assert.equal(claims.aud, h.resources[0]);
    assert.equal(claims.scope, "mcp:tools mcp:tools:read");
  });

  it("defaults only to scopes on the client's registered allow-list", async () => {
    const clientId = await registerClient(h, { scope: "mcp:tools:read" });
    const tokens = await grantWithoutScope(h, clientId);
    assert.equal(tokens.scope, "mcp:tools:read");
  });
});
