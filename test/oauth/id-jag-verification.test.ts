/**
 * ID-JAG verification (src/oauth/idJagVerification.ts) on its own, with keys held in memory:
 * the forged and malformed assertions an attacker can build without the IdP's help — `alg:
 * none`, an HMAC signature keyed with a public key, a second audience, a missing `jti` or
 * `client_id`, an `iat` in the future, a lifetime past the bound — each refused as
 * invalid_grant with a precise reason; a well-formed one (also with the `application/` typ
 * form, RFC 7515 §4.1.9) accepted.
 */
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import type { TrustedIdp } from "../../src/oauth/enterpriseIdps.js";
import { IdJagRejected, verifyIdJag } from "../../src/oauth/idJagVerification.js";

const ISSUER = "https://idp.example.com";
const AS = "https://gateway.example.com";
const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
const publicJwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
const idp: TrustedIdp = {
  issuer: ISSUER,
  clients: null,
  algorithms: ["ES256", "RS256"],
  keys: createLocalJWKSet({ keys: [publicJwk] }),
};
const settings = { audience: AS, idps: new Map([[ISSUER, idp]]), maxLifetimeSeconds: 600 };
const now = () => Math.floor(Date.now() / 1000);

const claims = (over: Record<string, unknown> = {}): JWTPayload => ({
  iss: ISSUER,
  sub: "user-1",
  aud: AS,
  client_id: "mc_AAAAAAAAAAAAAAAAAAAAAA",
  resource: `${AS}/mcp/demo`,
  scope: "mcp",
  jti: randomUUID(),
  iat: now(),
  exp: now() + 120,
  ...over,
});

const sign = (payload: JWTPayload, typ = "oauth-id-jag+jwt") =>
  new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: "k1", typ }).sign(privateKey);

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function refused(assertion: string, reason: RegExp): Promise<void> {
  await assert.rejects(verifyIdJag(assertion, settings), (err: unknown) => {
    assert.ok(err instanceof IdJagRejected, String(err));
    assert.equal(err.code, "invalid_grant");
    assert.match(err.reason, reason);
    return true;
  });
}

describe("ID-JAG verification", () => {
  it("accepts a well-formed ID-JAG (typ with or without application/)", async () => {
    const verified = await verifyIdJag(
      await sign(claims({ email: "a@example.com", groups: ["g"] })),
      settings,
    );
    assert.equal(verified.subject, "user-1");
    assert.equal(verified.resource, `${AS}/mcp/demo`);
    assert.deepEqual(verified.scopes, ["mcp"]);
    assert.deepEqual(verified.groups, ["g"]);
    await verifyIdJag(await sign(claims(), "application/oauth-id-jag+jwt"), settings);
  });

  it("rejects-alg-none: an unsigned assertion", async () => {
    const unsigned = `${b64({ alg: "none", typ: "oauth-id-jag+jwt" })}.${b64(claims())}.`;
    await refused(unsigned, /not a signed JWT/);
    await refused(`${unsigned}AAAA`, /JOSEAlgNotAllowed|ERR_JOSE_ALG_NOT_ALLOWED|alg/i);
  });

  it("rejects-hmac-keyed-with-the-public-key (algorithm confusion)", async () => {
    const header = b64({ alg: "HS256", kid: "k1", typ: "oauth-id-jag+jwt" });
    const body = b64(claims());
    const mac = createHmac("sha256", JSON.stringify(publicJwk))
      .update(`${header}.${body}`)
      .digest("base64url");
    await refused(`${header}.${body}.${mac}`, /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it("rejects a second audience, even next to ours", async () => {
    await refused(
      await sign(claims({ aud: [AS, "https://other.example.com"] })),
      /is not this authorization server/,
    );
  });

  it("rejects missing jti and client_id", async () => {
    await refused(await sign(claims({ jti: undefined })), /"jti" claim/);
    await refused(await sign(claims({ client_id: undefined })), /"client_id" claim/);
  });

  it("rejects an iat in the future and a lifetime past the bound", async () => {
    await refused(await sign(claims({ iat: now() + 300, exp: now() + 400 })), /iat .* is in the future/);
    await refused(await sign(claims({ exp: now() + 3600 })), /more than the 600 s accepted/);
  });

  it("rejects a resource claim that is not one string", async () => {
    await refused(
      await sign(claims({ resource: [`${AS}/mcp/demo`, `${AS}/mcp/other`] })),
      /resource claim is not a single string/,
    );
  });
});
