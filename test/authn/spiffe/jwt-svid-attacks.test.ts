/**
 * Attacks on JWT-SVID bearer tokens (SPIFFE JWT-SVID §2–§3), against the verifier reading real
 * bundle files (SPIFFE bundle format) that are rewritten while it runs. Each test is named
 * after the attack it stops; the end-to-end path through the gateway is in
 * test/e2e/workload-identity-jwt-svid.test.ts.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { JwtSvidVerifier } from "../../../src/authn/spiffe/jwtSvid.js";
import { TrustBundles, TrustDomainBundle } from "../../../src/authn/spiffe/trustBundle.js";
import { tempDir } from "../../helpers/gateway.js";
import {
  bundleDocument,
  type JwtAuthorityKey,
  mintJwtAuthority,
  mintJwtSvid,
  mintUnsignedOrSymmetric,
  writeBundle,
} from "../../helpers/spiffe.js";
import { waitFor } from "../../helpers/wait.js";

const RESOURCE = "https://gw.example/mcp/demo";
const CI = "spiffe://example.org/ns/ci/sa/builder";

describe("JWT-SVID attacks", () => {
  const dir = tempDir("spiffe-jwt-");
  const fileA = join(dir, "example.org.json");
  const fileB = join(dir, "other.org.json");
  let keyA: JwtAuthorityKey;
  let keyA2: JwtAuthorityKey;
  let keyB: JwtAuthorityKey;
  let bundles: TrustBundles;
  let verifier: JwtSvidVerifier;
  const warnings: string[] = [];

  before(async () => {
    keyA = await mintJwtAuthority("ES256");
    keyA2 = await mintJwtAuthority("RS256");
    keyB = await mintJwtAuthority("ES256");
    writeBundle(fileA, bundleDocument([], [keyA, keyA2]));
    writeBundle(fileB, bundleDocument([], [keyB]));
    const log = pino({ level: "silent" });
    const spy = Object.assign(Object.create(log), {
      warn: (obj: unknown, msg: string) => warnings.push(`${msg} ${JSON.stringify(obj)}`),
    });
    bundles = new TrustBundles([
      new TrustDomainBundle("example.org", { file: fileA }, spy, 100),
      new TrustDomainBundle("other.org", { file: fileB }, spy, 100),
    ]);
    for (const name of bundles.names()) await bundles.get(name)?.start();
    verifier = new JwtSvidVerifier(
      bundles,
      {
        algorithms: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
        clockToleranceSeconds: 0,
        cacheSize: 100,
      },
      "dev",
    );
  });
  after(() => {
    bundles.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = async (token: string, resource = RESOURCE) => await verifier.verify(token, resource);

  it("accepts a JWT-SVID of a configured trust domain as a workload principal", async () => {
    const r = await check(await mintJwtSvid(keyA, { sub: CI, aud: [RESOURCE, "other"] }));
    assert.equal(r.ok, true, JSON.stringify(r));
    if (!r.ok) return;
    assert.equal(r.principal.id, CI);
    assert.equal(r.principal.kind, "workload");
    assert.equal(r.principal.method, "jwt_svid");
    // RSA keys work as well, and a second use is answered from the cache without a promise.
    const rsa = await mintJwtSvid(keyA2, { sub: CI, aud: RESOURCE });
    assert.equal((await check(rsa)).ok, true);
    assert.equal(verifier.verify(rsa, RESOURCE) instanceof Promise, false);
  });

  it("refuses a token from trust domain A signed with trust domain B's key", async () => {
    const forged = await mintJwtSvid(keyB, { sub: CI, aud: RESOURCE });
    const r = await check(forged);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : "", /is not a jwt-svid key of trust domain example\.org/);
  });

  it("refuses a SPIFFE ID of a trust domain that is not configured", async () => {
    const r = await check(await mintJwtSvid(keyA, { sub: "spiffe://evil.org/ns/ci/x", aud: RESOURCE }));
    assert.match(!r.ok ? r.reason : "", /trust domain evil\.org is not configured/);
  });

  it("refuses a sub that is not a SPIFFE ID (query, '..' segment, upper-case trust domain)", async () => {
    for (const sub of [
      "spiffe://example.org/ns/ci?x=1",
      "spiffe://example.org/ns/../ci",
      "spiffe://Example.org/ci",
    ]) {
      const r = await check(await mintJwtSvid(keyA, { sub, aud: RESOURCE }));
      assert.match(!r.ok ? r.reason : "", /sub is not a SPIFFE ID/, sub);
    }
  });

  it("refuses an expired JWT-SVID", async () => {
    const r = await check(await mintJwtSvid(keyA, { sub: CI, aud: RESOURCE, expiresIn: -10 }));
    assert.match(!r.ok ? r.reason : "", /expired/);
  });

  it("refuses a JWT-SVID without exp", async () => {
    const r = await check(await mintJwtSvid(keyA, { sub: CI, aud: RESOURCE, expiresIn: null }));
    assert.match(!r.ok ? r.reason : "", /claim exp missing/);
  });

  it("refuses a JWT-SVID for another audience, and one without aud", async () => {
    const other = await check(await mintJwtSvid(keyA, { sub: CI, aud: "https://gw.example/mcp/other" }));
    assert.match(!other.ok ? other.reason : "", /audience .* does not contain this resource/);
    const none = await check(await mintJwtSvid(keyA, { sub: CI }));
    assert.match(!none.ok ? none.reason : "", /claim aud missing/);
  });

  it("refuses alg none and HS256 (a symmetric key made of public material)", async () => {
    const claims = { sub: CI, aud: RESOURCE, exp: Math.floor(Date.now() / 1000) + 300 };
    for (const alg of ["none", "HS256"] as const) {
      const r = await check(
        await mintUnsignedOrSymmetric(alg, keyA.kid, claims, JSON.stringify(keyA.publicJwk)),
      );
      assert.match(!r.ok ? r.reason : "", /algorithm .* is not allowed/, alg);
    }
  });

  it("refuses a JWT-SVID whose signature was made by another key under a trusted kid", async () => {
    const impostor = await mintJwtAuthority("ES256");
    const r = await check(await mintJwtSvid({ ...impostor, kid: keyA.kid }, { sub: CI, aud: RESOURCE }));
    assert.match(!r.ok ? r.reason : "", /signature verification failed/);
  });

  it("refuses a token without kid", async () => {
    const claims = { sub: CI, aud: RESOURCE, exp: Math.floor(Date.now() / 1000) + 300 };
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const r = await check(`${b64({ alg: "ES256" })}.${b64(claims)}.AAAA`);
    assert.match(!r.ok ? r.reason : "", /no kid/);
  });

  it("refuses a cached SVID once a rotated bundle file removed its signing key", async () => {
    const token = await mintJwtSvid(keyA, { sub: CI, aud: RESOURCE });
    assert.equal((await check(token)).ok, true);
    assert.equal(verifier.verify(token, RESOURCE) instanceof Promise, false, "cached");
    writeBundle(fileA, bundleDocument([], [keyA2], 2));
    await waitFor(
      "the rotated bundle",
      () => bundles.get("example.org")?.current?.jwtAuthorities.has(keyA.kid) === false,
    );
    const r = await check(token);
    assert.match(!r.ok ? r.reason : "", /is not a jwt-svid key of trust domain example\.org/);
    // The key that stayed keeps working.
    assert.equal((await check(await mintJwtSvid(keyA2, { sub: CI, aud: RESOURCE }))).ok, true);
  });

  it("keeps the previous bundle when the bundle file is rewritten with an invalid one", async () => {
    const before = bundles.get("other.org")?.generation;
    writeBundle(fileB, '{"keys": [{"use": "jwt-svid", "kty": "EC"}]}');
    await waitFor("the warning", () => warnings.some((w) => w.includes("not a valid bundle")));
    assert.equal(bundles.get("other.org")?.generation, before);
    const r = await check(await mintJwtSvid(keyB, { sub: "spiffe://other.org/w", aud: RESOURCE }));
    assert.equal(r.ok, true);
  });
});
