/**
 * Dynamic Client Registration (RFC 7591) input an attacker controls: oversized and
 * malformed bodies and dangerous redirect URIs get RFC 7591 §3.2.2 errors, never a crash;
 * native clients may use loopback (any port, RFC 8252 §7.3) and custom schemes; a client may
 * register a bounded number of redirect URIs, none with userinfo.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { oauthDatabase } from "../../src/oauth/database.js";
import { type Harness, registerClient, startHarness } from "./asHarness.js";

describe("client registration attacks", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const register = async (body: string, type = "application/json") => {
    const res = await fetch(`${h.issuer}/reg`, { method: "POST", headers: { "content-type": type }, body });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("refuses an oversized registration body (memory exhaustion)", async () => {
    const res = await register(
      JSON.stringify({ redirect_uris: ["http://127.0.0.1/cb"], client_name: "x".repeat(64 * 1024) }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error, "invalid_client_metadata");
  });

  for (const [name, body] of [
    ["malformed JSON", "{not json"],
    ["a JSON array", "[]"],
    ["a JSON string", '"x"'],
  ] as const) {
    it(`refuses ${name} as registration body`, async () => {
      const res = await register(body);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, "invalid_client_metadata");
    });
  }

  it("refuses a non-JSON content type", async () => {
    const res = await register("redirect_uris=http://127.0.0.1/cb", "application/x-www-form-urlencoded");
    assert.equal(res.status, 400);
    assert.equal(res.body.error, "invalid_client_metadata");
  });

  for (const [uri, applicationType] of [
    ["http://evil.example/callback", "web"],
    ["http://evil.example/callback", "native"],
    ["javascript://alert(1)", "native"],
    ["cursor://anysphere.cursor-retrieval/oauth", "web"],
    ["https://client.example/cb#frag", "web"],
  ] as const) {
    it(`refuses redirect_uri ${uri} for a ${applicationType} client`, async () => {
      const res = await register(
        JSON.stringify({
          application_type: applicationType,
          redirect_uris: [uri],
          token_endpoint_auth_method: "none",
        }),
      );
      assert.equal(res.status, 400);
      assert.ok(
        res.body.error === "invalid_redirect_uri" || res.body.error === "invalid_client_metadata",
        JSON.stringify(res.body),
      );
    });
  }

  const stored = async () =>
    (
      await oauthDatabase(h.store)
        .selectFrom("oauth_payloads")
        .select("id")
        .where("model", "=", "Client")
        .execute()
    ).length;

  it("refuses a client registering hundreds of redirect URIs (storage and consent-page exhaustion)", async () => {
    const before = await stored();
    const uris = Array.from({ length: 500 }, (_, i) => `http://127.0.0.1/cb${i}`);
    const res = await register(
      JSON.stringify({ application_type: "native", redirect_uris: uris, token_endpoint_auth_method: "none" }),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error, "invalid_client_metadata");
    assert.match(String(res.body.error_description), /at most 10 redirect_uris/);
    assert.equal(await stored(), before, "nothing was registered");
    // Positive control: the cap itself is accepted.
    await registerClient(h, { redirect_uris: uris.slice(0, 10) });
    assert.equal(await stored(), before + 1);
  });

  for (const uri of [
    "https://client.example@evil.example/callback",
    "https://user:pass@client.example/callback",
    "http://attacker@127.0.0.1/callback",
  ]) {
    it(`refuses redirect_uri ${uri} hiding its real host behind userinfo`, async () => {
      const before = await stored();
      const res = await register(
        JSON.stringify({
          application_type: "native",
          redirect_uris: [uri],
          token_endpoint_auth_method: "none",
        }),
      );
      assert.equal(res.status, 400);
      assert.equal(res.body.error, "invalid_redirect_uri", JSON.stringify(res.body));
      assert.equal(await stored(), before, "nothing was registered");
    });
  }

  it("accepts native clients with custom schemes and loopback redirects", async () => {
    const id = await registerClient(h, {
      redirect_uris: [
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "http://127.0.0.1/callback",
      ],
    });
    assert.ok(id.length > 0);
  });
});
