/**
 * Attacks on OAuth access tokens in external-IdP mode, against a real HTTP JWKS endpoint.
 * Each test is named after the attack it stops.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { base64url, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { OAuthTokenVerifier } from "../../src/authn/oauthToken.js";
import { grants, missingScopes } from "../../src/authz/oauthScopes.js";
import { Config, type ExternalOAuthConfig } from "../../src/config/schema.js";

const RESOURCE = "http://127.0.0.1:8080/mcp/demo";

describe("OAuth access token attacks (external IdP, JWT)", () => {
  let server: Server;
  let issuer: string;
  let jwksFetches = 0;
  let privateKey: CryptoKey;
  let publicPem: string;
  let verifier: OAuthTokenVerifier;

  before(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    publicPem = await exportSPKI(pair.publicKey);
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/.well-known/oauth-authorization-server") {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      } else if (req.url === "/jwks") {
        jwksFetches++;
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.statusCode = 404;
        res.end("{}");
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = Config.parse({ oauth: { mode: "external", issuer } });
    verifier = new OAuthTokenVerifier(config.oauth as ExternalOAuthConfig, "test", null);
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const token = (
    claims: Record<string, unknown> = {},
    opts: { kid?: string; exp?: number | string; nbf?: number } = {},
  ) => {
    const jwt = new SignJWT({ scope: "mcp:tools", ...claims })
      .setProtectedHeader({ alg: "RS256", kid: opts.kid ?? "k1", typ: "at+jwt" })
      .setIssuer((claims.iss as string) ?? issuer)
      .setAudience((claims.aud as string) ?? RESOURCE)
      .setSubject("alice")
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .setExpirationTime(opts.exp ?? "5m");
    if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
    return jwt.sign(privateKey);
  };

  const check = async (t: string, resource = RESOURCE) => verifier.verify(t, resource);

  it("accepts a token issued for this resource, then serves it from the cache synchronously", async () => {
    const t = await token();
    const first = await check(t);
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal(first.principal.method, "oauth");
    assert.deepEqual([...(first.principal.oauthScopes ?? [])], ["mcp:tools"]);
    const second = verifier.verify(t, RESOURCE);
    assert.ok(!(second instanceof Promise), "cache hit is synchronous");
    assert.ok(second.ok);
  });

  it("rejects-token-for-other-audience, even when the token is already cached", async () => {
    const other = await token({ aud: "http://127.0.0.1:8080/mcp/other" });
    const r = await check(other);
    assert.equal(r.ok, false);
    const t = await token();
    assert.ok((await check(t)).ok);
    const replayed = await check(t, "http://127.0.0.1:8080/mcp/other");
    assert.equal(replayed.ok, false);
  });

  it("rejects-token-from-another-issuer", async () => {
    const r = await check(await token({ iss: "https://evil.example.com" }));
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.reason, /iss/);
  });

  it("rejects-alg-none (unsigned token)", async () => {
    const header = base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }));
    const payload = base64url.encode(
      JSON.stringify({
        iss: issuer,
        aud: RESOURCE,
        sub: "mallory",
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    );
    const r = await check(`${header}.${payload}.`);
    assert.equal(r.ok, false);
    const r2 = await check(`${header}.${payload}.x`);
    assert.equal(r2.ok, false);
  });

  it("rejects-hmac-signed-with-the-public-key (algorithm confusion)", async () => {
    const forged = await new SignJWT({ scope: "mcp" })
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setIssuer(issuer)
      .setAudience(RESOURCE)
      .setSubject("mallory")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(publicPem));
    const r = await check(forged);
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.reason, /algorithm/);
  });

  it("rejects-expired-token and not-yet-valid token beyond the leeway", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await check(await token({}, { exp: now - 120 }));
    assert.equal(expired.ok, false);
    assert.match(expired.ok ? "" : expired.reason, /expired/);
    const early = await check(await token({}, { nbf: now + 600 }));
    assert.equal(early.ok, false);
    const withinLeeway = await check(await token({}, { nbf: now + 5 }));
    assert.ok(withinLeeway.ok, "nbf within the 30 s leeway is accepted");
  });

  it("rejects a token missing a required claim (sub)", async () => {
    const noSub = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setIssuer(issuer)
      .setAudience(RESOURCE)
      .setExpirationTime("5m")
      .sign(privateKey);
    assert.equal((await check(noSub)).ok, false);
  });

  it("survives-unknown-kid-flood with at most one JWKS refetch per cooldown", async () => {
    const before = jwksFetches;
    const forged = await Promise.all(
      Array.from({ length: 50 }, (_, i) => token({}, { kid: `unknown-${i}` })),
    );
    const results = await Promise.all(forged.map((t) => check(t)));
    assert.ok(results.every((r) => !r.ok));
    assert.ok(jwksFetches - before <= 1, `JWKS fetched ${jwksFetches - before} times for 50 unknown kids`);
  });
});

describe("OAuth scope hierarchy", () => {
  it("lets a broader scope imply narrower ones, never the reverse", () => {
    assert.ok(grants(new Set(["mcp"]), "mcp:tools:write"));
    assert.ok(grants(new Set(["mcp:tools"]), "mcp:tools:read"));
    assert.ok(!grants(new Set(["mcp:tools:read"]), "mcp:tools"));
    assert.ok(
      !grants(new Set(["mcp:tool"]), "mcp:tools"),
      "a prefix that is not a whole segment grants nothing",
    );
    assert.deepEqual(missingScopes(new Set(["mcp:tools:read"]), ["mcp:tools:read", "mcp:tools:write"]), [
      "mcp:tools:write",
    ]);
  });
});
