/**
 * Replayed credentials at the token endpoint: a rotated refresh token presented again, or
 * an authorization code used twice, revokes the whole grant (OAuth 2.1 §4.3.1, RFC 9700
 * §4.14.2 and §4.5) — and verifyAccessToken refuses the access tokens already issued from it,
 * cached or not.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fullFlow, type Harness, REDIRECT_WITH_PORT, startHarness, tokenRequest } from "./asHarness.js";

describe("token replay attacks", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it("rotates the refresh token on every use", async () => {
    const { clientId, tokens } = await fullFlow(h);
    const first = String(tokens.refresh_token);
    const res = await tokenRequest(h, {
      grant_type: "refresh_token",
      refresh_token: first,
      client_id: clientId,
      resource: h.resources[0],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(typeof res.body.refresh_token, "string");
    assert.notEqual(res.body.refresh_token, first);
    const check = await h.as.verifyAccessToken(String(res.body.access_token), h.resources[0]);
    assert.equal(check.ok, true);
  });

  it("revokes the grant when a rotated refresh token is replayed (stolen refresh token)", async () => {
    const { clientId, tokens } = await fullFlow(h);
    const stolen = String(tokens.refresh_token);
    const original = String(tokens.access_token);
    assert.equal((await h.as.verifyAccessToken(original, h.resources[0])).ok, true); // now cached

    const legit = await tokenRequest(h, {
      grant_type: "refresh_token",
      refresh_token: stolen,
      client_id: clientId,
    });
    assert.equal(legit.status, 200);
    const rotated = String(legit.body.refresh_token);
    const fresh = String(legit.body.access_token);
    assert.equal((await h.as.verifyAccessToken(fresh, h.resources[0])).ok, true);

    const replay = await tokenRequest(h, {
      grant_type: "refresh_token",
      refresh_token: stolen,
      client_id: clientId,
    });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, "invalid_grant");

    // Everything from the grant is dead: the rotated refresh token and both access tokens,
    // including the ones already in the verifier's cache.
    const next = await tokenRequest(h, {
      grant_type: "refresh_token",
      refresh_token: rotated,
      client_id: clientId,
    });
    assert.equal(next.body.error, "invalid_grant");
    assert.equal((await h.as.verifyAccessToken(fresh, h.resources[0])).ok, false);
    assert.equal((await h.as.verifyAccessToken(original, h.resources[0])).ok, false);
  });

  it("refuses a reused authorization code and revokes the tokens issued from it (code interception)", async () => {
    const { clientId, tokens, code, verifier } = await fullFlow(h);
    const access = String(tokens.access_token);
    const replay = await tokenRequest(h, {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_WITH_PORT,
      client_id: clientId,
      code_verifier: verifier,
      resource: h.resources[0],
    });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, "invalid_grant");
    assert.equal((await h.as.verifyAccessToken(access, h.resources[0])).ok, false);
    const refresh = await tokenRequest(h, {
      grant_type: "refresh_token",
      refresh_token: String(tokens.refresh_token),
      client_id: clientId,
    });
    assert.equal(refresh.body.error, "invalid_grant");
  });

  it("revokes the grant when the client revokes its refresh token (RFC 7009)", async () => {
    const { clientId, tokens } = await fullFlow(h);
    const access = String(tokens.access_token);
    assert.equal((await h.as.verifyAccessToken(access, h.resources[0])).ok, true);
    const res = await fetch(`${h.issuer}/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: String(tokens.refresh_token), client_id: clientId }).toString(),
    });
    assert.equal(res.status, 200);
    assert.equal((await h.as.verifyAccessToken(access, h.resources[0])).ok, false);
  });

  it("introspects a refresh token for its own client only (RFC 7662)", async () => {
    const { clientId, tokens } = await fullFlow(h);
    const introspect = async (client: string) => {
      const res = await fetch(`${h.issuer}/token/introspection`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: String(tokens.refresh_token), client_id: client }).toString(),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    assert.equal((await introspect(clientId)).active, true);
    const { clientId: other } = await fullFlow(h);
    assert.equal((await introspect(other)).active, false);
  });
});
