/**
 * Host header attacks on every route (issue 10 item 9): authorization-server metadata built
 * from `Host: evil.example.com` pointed every discovering client at evil.example.com, and the
 * DNS-rebinding guard covered only /mcp/*. Now a request naming another host is refused on
 * every route (403, nothing served), the probes also answer an IP-literal Host (what
 * orchestrators send, and what a rebinding page cannot), and the metadata's URLs come from
 * the configured issuer whatever Host and X-Forwarded-* say.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { rawRequest } from "../helpers/rawHttp.js";
import { type Harness, startHarness } from "../oauth/asHarness.js";

const EVIL = "evil.example.com";

/** Every URL-valued member of a metadata document. */
function urlsIn(doc: Record<string, unknown>): string[] {
  return Object.values(doc)
    .flat()
    .filter((v): v is string => typeof v === "string" && /^https?:\/\//.test(v));
}

describe("Host header attacks on the gateway", () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
  });
  after(() => gw?.stop());

  const ROUTES: Array<[string, string, string?]> = [
    ["GET", "/.well-known/oauth-authorization-server"],
    ["GET", "/.well-known/openid-configuration"],
    ["GET", "/.well-known/oauth-protected-resource/mcp/demo"],
    ["GET", "/.well-known/oauth-protected-resource"],
    ["GET", "/jwks"],
    ["GET", "/auth?client_id=x&response_type=code"],
    ["POST", "/token", "grant_type=client_credentials"],
    ["POST", "/reg", "{}"],
    ["GET", "/oauth/interaction/abc"],
    ["GET", "/console"],
  ];

  it("serves authorization-server metadata requested with Host: evil.example.com nowhere (403), and with its own Host on its issuer", async () => {
    const url = `${gw.url}/.well-known/oauth-authorization-server`;
    const evil = await rawRequest(url, { headers: { host: EVIL } });
    assert.equal(evil.status, 403);
    assert.ok(!evil.text.includes("authorization_endpoint"), "no metadata was served");
    assert.ok(!evil.text.includes(`http://${EVIL}`));
    // Positive control: the same request with the gateway's own Host.
    const own = await rawRequest(url);
    assert.equal(own.status, 200);
    const meta = JSON.parse(own.text) as Record<string, unknown>;
    assert.equal(meta.issuer, gw.url);
    for (const u of urlsIn(meta)) assert.ok(u === gw.url || u.startsWith(`${gw.url}/`), u);
  });

  for (const [method, path, body] of ROUTES) {
    it(`refuses ${method} ${path.split("?")[0]} for a rebinding Host name, serves it for its own`, async () => {
      const headers: Record<string, string> =
        body === undefined
          ? {}
          : {
              "content-type": body.startsWith("{") ? "application/json" : "application/x-www-form-urlencoded",
            };
      const evil = await rawRequest(`${gw.url}${path}`, {
        method,
        headers: { ...headers, host: `${EVIL}:${new URL(gw.url).port}` },
        ...(body === undefined ? {} : { body }),
      });
      assert.equal(evil.status, 403, evil.text);
      assert.equal((JSON.parse(evil.text) as { error: string }).error, "invalid_request");
      const own = await rawRequest(`${gw.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
      });
      assert.notEqual(own.status, 403, `${path}: ${own.text.slice(0, 200)}`);
    });
  }

  it("answers probes addressed by IP literal (orchestrators, scrapers) but not by a rebinding name", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/status"]) {
      for (const host of ["10.1.2.3:8080", "[fd00::7]:8080"]) {
        assert.equal(
          (await rawRequest(`${gw.url}${path}`, { headers: { host } })).status,
          200,
          `${path} ${host}`,
        );
      }
      assert.equal((await rawRequest(`${gw.url}${path}`, { headers: { host: EVIL } })).status, 403, path);
    }
    // Other routes are not opened by an IP literal.
    const meta = await rawRequest(`${gw.url}/.well-known/oauth-authorization-server`, {
      headers: { host: "10.1.2.3:8080" },
    });
    assert.equal(meta.status, 403);
  });
});

describe("authorization-server URLs come from the issuer, not the request", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(); // mounted without any Host check: the issuer pinning alone
  });
  after(() => h.close());

  it("builds metadata requested with Host and X-Forwarded-* naming evil.example.com on the issuer", async () => {
    const res = await rawRequest(`${h.issuer}/.well-known/oauth-authorization-server`, {
      headers: { host: EVIL, "x-forwarded-host": EVIL, "x-forwarded-proto": "https" },
    });
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes(EVIL), res.text);
    const meta = JSON.parse(res.text) as Record<string, unknown>;
    assert.equal(meta.token_endpoint, `${h.issuer}/token`);
    for (const u of urlsIn(meta)) assert.ok(u === h.issuer || u.startsWith(`${h.issuer}/`), u);
  });
});
