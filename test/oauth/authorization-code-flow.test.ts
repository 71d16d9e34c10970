/**
 * The built-in authorization server end to end: a DCR-registered native client, a local
 * user signing in and consenting, authorization code + PKCE + resource indicator, and the
 * resulting RFC 9068 access token verified for its resource and refused for another.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { CookieJar } from "../fixtures/oidc-idp.js";
import {
  authorizationUrl,
  authorize,
  browse,
  fullFlow,
  type Harness,
  pkce,
  registerClient,
  startHarness,
} from "./asHarness.js";

describe("built-in authorization server: authorization code flow", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it("publishes RFC 8414 metadata with S256 only, RFC 9207 iss, CIMD and no offline_access", async () => {
    const res = await fetch(`${h.issuer}/.well-known/oauth-authorization-server`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.equal(meta.issuer, h.issuer);
    assert.deepEqual(meta.code_challenge_methods_supported, ["S256"]);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.equal(meta.client_id_metadata_document_supported, true);
    assert.equal(meta.registration_endpoint, `${h.issuer}/reg`);
    assert.equal(meta.revocation_endpoint, `${h.issuer}/token/revocation`);
    assert.equal(meta.introspection_endpoint, `${h.issuer}/token/introspection`);
    assert.ok(Array.isArray(meta.scopes_supported));
    assert.ok(!(meta.scopes_supported as string[]).includes("offline_access"));
    assert.ok((meta.scopes_supported as string[]).includes("mcp:tools"));
    assert.deepEqual(meta.response_types_supported, ["code"]);
    const oidc = await fetch(`${h.issuer}/.well-known/openid-configuration`);
    assert.equal(oidc.status, 200);
  });

  it("issues a resource-bound JWT access token that verifies for that resource only", async () => {
    const { tokens, clientId } = await fullFlow(h);
    assert.equal(tokens.token_type, "Bearer");
    assert.equal(typeof tokens.refresh_token, "string");
    const token = String(tokens.access_token);
    assert.equal(decodeProtectedHeader(token).typ, "at+jwt");
    const claims = decodeJwt(token);
    assert.equal(claims.aud, h.resources[0]);
    assert.equal(claims.iss, h.issuer);
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.scope, "mcp:tools");
    assert.ok((claims.exp as number) - (claims.iat as number) <= 300);

    const ok = await h.as.verifyAccessToken(token, h.resources[0]);
    assert.equal(ok.ok, true);
    if (ok.ok) {
      assert.equal(ok.principal.method, "oauth");
      assert.equal(ok.principal.kind, "user");
      assert.equal(ok.principal.name, "alice@example.test");
      assert.deepEqual([...(ok.principal.oauthScopes ?? [])], ["mcp:tools"]);
      assert.deepEqual(ok.principal.groups, ["staff"]);
    }
    // The cached path is synchronous.
    const again = h.as.verifyAccessToken(token, h.resources[0]);
    assert.ok(!(again instanceof Promise));
  });

  it("rejects a token presented to another resource (audience confusion)", async () => {
    const { tokens } = await fullFlow(h);
    const token = String(tokens.access_token);
    const other = await h.as.verifyAccessToken(token, h.resources[1]);
    assert.equal(other.ok, false);
    await h.as.verifyAccessToken(token, h.resources[0]);
    const cached = await h.as.verifyAccessToken(token, h.resources[1]);
    assert.equal(cached.ok, false);
  });

  it("rejects a forged or tampered token", async () => {
    const { tokens } = await fullFlow(h);
    const [head, body, sig] = String(tokens.access_token).split(".");
    const payload = JSON.parse(Buffer.from(body ?? "", "base64url").toString()) as Record<string, unknown>;
    payload.scope = "mcp:tools mcp:tools:read";
    const forged = `${head}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${sig}`;
    const res = await h.as.verifyAccessToken(forged, h.resources[0]);
    assert.equal(res.ok, false);
  });

  it("returns iss with the code (RFC 9207 mix-up defence)", async () => {
    const clientId = await registerClient(h);
    const back = await authorize(authorizationUrl(h, clientId, pkce()));
    assert.equal(back.searchParams.get("iss"), h.issuer);
    assert.ok(back.searchParams.get("code"));
  });

  it("asks a registered web client's user again in a new browser (DCR consent is not remembered)", async () => {
    const redirect = "https://client.example/callback";
    const clientId = await registerClient(h, { application_type: "web", redirect_uris: [redirect] });
    const first = await authorize(authorizationUrl(h, clientId, pkce(), { redirect_uri: redirect }), {
      stopAt: redirect,
    });
    assert.ok(first.searchParams.get("code"));
    // A new browser signs in again and is asked again: the consent form is answered "deny".
    const second = await authorize(authorizationUrl(h, clientId, pkce(), { redirect_uri: redirect }), {
      stopAt: redirect,
      decision: "deny",
    });
    assert.equal(second.searchParams.get("error"), "access_denied");
    assert.equal(second.searchParams.get("code"), null);
  });

  it("refuses a code to a second loopback port without consent (DCR native client replayed by a local listener)", async () => {
    const clientId = await registerClient(h);
    const jar = new CookieJar();
    // Positive control: the user signs in and consents once; the client's own port gets a code.
    const first = await authorize(authorizationUrl(h, clientId, pkce()), { jar });
    assert.ok(first.searchParams.get("code"));
    // The attacker knows the public client_id and listens on another loopback port; the user
    // opens the attacker's link in the same browser (signed-in session, consent given before).
    const attackerPort = "http://127.0.0.1:50999/";
    let url = authorizationUrl(h, clientId, pkce(), { redirect_uri: `${attackerPort}callback` });
    let page = "";
    for (let hop = 0; hop < 10; hop++) {
      const res = await browse(jar, url);
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.arrayBuffer();
        url = new URL(location, url);
        assert.ok(!url.href.startsWith(attackerPort), `a code reached the attacker's port: ${url.href}`);
        continue;
      }
      page = await res.text();
      break;
    }
    assert.match(page, /<h1>Authorize access<\/h1>/, "the user is shown the consent page");
    assert.match(page, /127\.0\.0\.1:50999/, "naming where the answer goes");
    // Refusing there sends no code; only an explicit Allow would.
    const denied = await authorize(url, { jar, decision: "deny", stopAt: attackerPort });
    assert.equal(denied.searchParams.get("error"), "access_denied");
    assert.equal(denied.searchParams.get("code"), null);
  });

  it("does not reuse one client's consent for another client of the same user", async () => {
    const trusted = await registerClient(h);
    await authorize(authorizationUrl(h, trusted, pkce()));
    const other = await registerClient(h, { client_name: "Other Agent" });
    const back = await authorize(authorizationUrl(h, other, pkce()), { decision: "deny" });
    assert.equal(back.searchParams.get("error"), "access_denied");
  });

  it("refuses an authorization request without a resource indicator (RFC 8707)", async () => {
    const clientId = await registerClient(h);
    const url = authorizationUrl(h, clientId, pkce());
    url.searchParams.delete("resource");
    const back = await authorize(url);
    assert.equal(back.searchParams.get("error"), "invalid_target");
    assert.equal(back.searchParams.get("iss"), h.issuer);
  });

  it("refuses a resource that is not one of the gateway's MCP endpoints", async () => {
    const clientId = await registerClient(h);
    const back = await authorize(
      authorizationUrl(h, clientId, pkce(), { resource: "https://evil.example/mcp" }),
    );
    assert.equal(back.searchParams.get("error"), "invalid_target");
  });

  it("sends access_denied with iss when the user denies consent", async () => {
    const clientId = await registerClient(h, { redirect_uris: ["http://127.0.0.1/callback"] });
    const back = await authorize(authorizationUrl(h, clientId, pkce()), { decision: "deny" });
    assert.equal(back.searchParams.get("error"), "access_denied");
    assert.equal(back.searchParams.get("iss"), h.issuer);
  });
});
