/**
 * A trust bundle from a SPIFFE bundle endpoint (SPIFFE Trust Domain and Bundle §5.2, the
 * `https_web` profile; plain http to 127.0.0.1 as tests and the dev environment allow): fetched
 * at start, refreshed every `refreshSeconds`, and never replaced by an invalid document or a
 * failed fetch (a bundle endpoint answering garbage cannot empty the trust domain or swap in
 * keys half-read).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { TrustDomainBundle } from "../../../src/authn/spiffe/trustBundle.js";
import { bundleDocument, type JwtAuthorityKey, mintJwtAuthority } from "../../helpers/spiffe.js";
import { waitFor } from "../../helpers/wait.js";

describe("SPIFFE bundle endpoint", () => {
  let server: Server;
  let served: { status: number; body: string };
  let fetches = 0;
  let url: string;
  let k1: JwtAuthorityKey;
  let k2: JwtAuthorityKey;
  let bundle: TrustDomainBundle;

  before(async () => {
    [k1, k2] = await Promise.all([mintJwtAuthority(), mintJwtAuthority()]);
    served = { status: 200, body: bundleDocument([], [k1]) };
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(served.status, { "content-type": "application/json" }).end(served.body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`;
    bundle = new TrustDomainBundle(
      "example.org",
      { endpoint: url, refreshSeconds: 1 },
      pino({ level: "silent" }),
    );
    await bundle.start();
  });
  after(async () => {
    bundle.close();
    await new Promise((r) => server.close(r));
  });

  it("loads the bundle at start", () => {
    assert.deepEqual([...(bundle.current?.jwtAuthorities.keys() ?? [])], [k1.kid]);
  });

  it("keeps the previous bundle when the endpoint answers an error or an invalid bundle", async () => {
    const generation = bundle.generation;
    for (const next of [
      { status: 500, body: "{}" },
      { status: 200, body: '{"keys": [{"use": "jwt-svid", "kty": "oct", "kid": "x", "k": "c2VjcmV0"}]}' },
      { status: 200, body: "not json" },
    ]) {
      served = next;
      const seen = fetches;
      await waitFor("a refresh", () => fetches > seen + 1, { timeoutMs: 10_000 });
      assert.equal(bundle.generation, generation, JSON.stringify(next));
      assert.ok(bundle.current?.jwtAuthorities.has(k1.kid));
    }
  });

  it("picks up a rotated bundle at the next refresh", async () => {
    served = { status: 200, body: bundleDocument([], [k2], 2) };
    await waitFor("the rotated bundle", () => bundle.current?.jwtAuthorities.has(k2.kid), {
      timeoutMs: 10_000,
    });
    assert.equal(bundle.current?.jwtAuthorities.has(k1.kid), false);
    assert.equal(bundle.current?.sequence, 2);
  });
});
