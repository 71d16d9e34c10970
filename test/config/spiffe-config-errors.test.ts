/**
 * SPIFFE settings that are wrong stop startup with a message naming the field and the fix
 * (`spiffe`, `listen.tls`, `servers.<name>.tls`): unknown keys, a plain-http bundle endpoint
 * outside dev, client certificates without trust bundles, an unreadable or invalid bundle
 * file, a malformed upstream SPIFFE ID, an SVID key that is not the certificate's.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pino from "pino";
import { startSpiffe, upstreamSvids } from "../../src/authn/spiffe/runtime.js";
import { parseConfig } from "../../src/config/load.js";
import { cleanup, tempDir } from "../helpers/gateway.js";
import { bundleDocument, mintAuthority, mintSvid, opensslSkip } from "../helpers/spiffe.js";

const OPENSSL_SKIP = opensslSkip();

const log = pino({ level: "silent" });
const parse = (raw: unknown) => parseConfig(raw, "portcullis.yaml");

describe("SPIFFE configuration errors name the field", { skip: OPENSSL_SKIP }, () => {
  const dir = tempDir("spiffe-config-");
  after(() => cleanup(dir));

  it("rejects unknown keys and a malformed trust domain name", () => {
    assert.throws(
      () =>
        parse({ spiffe: { trustDomains: [{ name: "example.org", bundle: { file: "b.json" }, extra: 1 }] } }),
      /spiffe\.trustDomains\.0: unknown key\(s\) 'extra'/,
    );
    assert.throws(
      () => parse({ spiffe: { trustDomains: [{ name: "Example.org:443", bundle: { file: "b.json" } }] } }),
      /spiffe\.trustDomains\.0\.name: a trust domain name/,
    );
    assert.throws(
      () => parse({ listen: { tls: { cert: { file: "c" }, key: { file: "k" }, clientAuth: "maybe" } } }),
      /listen\.tls\.clientAuth/,
    );
  });

  it("refuses a plain-http bundle endpoint except to loopback in dev", () => {
    const endpoint = (url: string, environment = "dev") => ({
      environment,
      spiffe: { trustDomains: [{ name: "example.org", bundle: { endpoint: url } }] },
    });
    assert.doesNotThrow(() => parse(endpoint("http://127.0.0.1:8443/bundle")));
    assert.throws(
      () => parse(endpoint("http://127.0.0.1:8443/bundle", "prod")),
      /bundle\.endpoint: must be https/,
    );
    assert.throws(() => parse(endpoint("http://bundles.example.org/")), /bundle\.endpoint: must be https/);
    assert.equal(
      (
        parse(endpoint("https://bundles.example.org/")).spiffe?.trustDomains[0]?.bundle as {
          refreshSeconds: number;
        }
      ).refreshSeconds,
      300,
    );
  });

  it("refuses client certificates without trust bundles, and tls.spiffe to an http URL", () => {
    assert.throws(
      () => parse({ listen: { tls: { cert: { file: "c" }, key: { file: "k" }, clientAuth: "require" } } }),
      /listen\.tls\.clientAuth: require needs spiffe\.trustDomains/,
    );
    const server = {
      transport: "http",
      url: "http://127.0.0.1:9/mcp",
      tls: { spiffe: { id: "spiffe://example.org/up" }, svid: { cert: "c", key: "k" } },
    };
    assert.throws(
      () => parse({ servers: { up: server } }),
      /servers\.up\.url: tls\.spiffe needs an https URL/,
    );
    assert.throws(
      () => parse({ servers: { up: { ...server, url: "https://127.0.0.1:9/mcp" } } }),
      /servers\.up\.tls\.spiffe: trust domain "example\.org" is not in spiffe\.trustDomains/,
    );
  });

  it("stops startup on a missing or invalid bundle file, naming it", async () => {
    const config = (file: string) =>
      parse({ spiffe: { trustDomains: [{ name: "example.org", bundle: { file } }] } }).spiffe as NonNullable<
        ReturnType<typeof parse>["spiffe"]
      >;
    await assert.rejects(
      startSpiffe(config(join(dir, "absent.json")), "dev", log),
      /spiffe\.trustDomains\.0\.bundle\.file: .*ENOENT/,
    );
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ keys: [{ use: "x509-svid", kty: "EC", x5c: ["AAAA"] }] }));
    await assert.rejects(
      startSpiffe(config(bad), "dev", log),
      /spiffe\.trustDomains\.0\.bundle\.file: .*x5c\[0\] is not a DER certificate/,
    );
  });

  it("stops startup on a malformed upstream SPIFFE ID or an SVID key that is not the certificate's", async () => {
    const ca = mintAuthority(dir, "example.org");
    const a = mintSvid(ca, { uris: ["spiffe://example.org/gw"] });
    const b = mintSvid(ca, { uris: ["spiffe://example.org/gw"] });
    const bundle = join(dir, "b.json");
    writeFileSync(bundle, bundleDocument([ca], []));
    const raw = (id: string, key: string) => ({
      spiffe: { trustDomains: [{ name: "example.org", bundle: { file: bundle } }] },
      servers: {
        up: {
          transport: "http",
          url: "https://127.0.0.1:9/mcp",
          tls: { spiffe: { id }, svid: { cert: a.certFile, key } },
        },
      },
    });
    const attempt = async (id: string, key: string) => {
      const config = parse(raw(id, key));
      const spiffe = await startSpiffe(config.spiffe as NonNullable<typeof config.spiffe>, "dev", log);
      try {
        upstreamSvids(config, spiffe, log).close();
      } finally {
        spiffe.close();
      }
    };
    await assert.rejects(
      attempt("spiffe://example.org/up/../x", a.keyFile),
      /servers\.up\.tls\.spiffe\.id: .*'\.\.'/,
    );
    await assert.rejects(
      attempt("spiffe://example.org/up", b.keyFile),
      /servers\.up\.tls\.svid: .* is not the key of the certificate/,
    );
    await attempt("spiffe://example.org/up", a.keyFile);
  });
});
