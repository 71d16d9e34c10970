/**
 * Outbound SPIFFE mutual TLS (`servers.<name>.tls`): the gateway presents its own X.509-SVID
 * (PEM files as a SPIFFE helper writes them) to a real HTTPS MCP upstream that requires a
 * client certificate, verifies the upstream's chain against the trust bundle and its SPIFFE
 * ID instead of its host name, refuses an upstream presenting another SPIFFE ID, and picks
 * up a rotated SVID without a restart.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { modern, type RunningGateway, rpc, startGateway, tempDir } from "../helpers/gateway.js";
import {
  type Authority,
  bundleDocument,
  mintAuthority,
  mintSvid,
  opensslSkip,
  writeBundle,
} from "../helpers/spiffe.js";
import { waitFor } from "../helpers/wait.js";

const OPENSSL_SKIP = opensslSkip();

const UPSTREAM_ID = "spiffe://example.org/ns/tools/sa/mcp";
const GATEWAY_ID = "spiffe://example.org/ns/gateway/sa/portcullis";

describe("outbound SPIFFE mutual TLS to an HTTPS MCP upstream", { skip: OPENSSL_SKIP }, () => {
  const dir = tempDir("spiffe-e2e-out-");
  const svidCert = join(dir, "svid.pem");
  const svidKey = join(dir, "svid_key.pem");
  let ca: Authority;
  let upstream: HttpUpstream;
  let gw: RunningGateway;

  before(async () => {
    ca = mintAuthority(dir, "example.org");
    const bundle = join(dir, "example.org.json");
    writeBundle(bundle, bundleDocument([ca], []));
    const served = mintSvid(ca, { uris: [UPSTREAM_ID] });
    upstream = await startHttpUpstream({
      tls: { cert: served.cert, key: served.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
    });
    const mine = mintSvid(ca, { uris: [GATEWAY_ID] });
    copyFileSync(mine.certFile, svidCert);
    copyFileSync(mine.keyFile, svidKey);
    const tls = (id: string) => ({ spiffe: { id }, svid: { cert: svidCert, key: svidKey } });
    gw = await startGateway({
      dir,
      config: {
        spiffe: { trustDomains: [{ name: "example.org", bundle: { file: bundle } }] },
        servers: {
          tools: { transport: "http", url: upstream.url, anonymous: true, tls: tls(UPSTREAM_ID) },
          impostor: {
            transport: "http",
            url: upstream.url,
            anonymous: true,
            tls: tls("spiffe://example.org/ns/tools/sa/expected-other"),
          },
        },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  const echo = (server: string, text: string) => {
    const m = modern(1, "tools/call", { name: "echo", arguments: { text } });
    return rpc(gw.endpoint(server), m.body, m.headers);
  };

  it("reaches the upstream with the gateway's X.509-SVID and verifies the upstream's SPIFFE ID", async () => {
    const r = await echo("tools", "over spiffe mtls");
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /over spiffe mtls/);
    const seen = upstream.requests.at(-1)?.clientCertificate;
    assert.equal(seen?.subjectaltname, `URI:${GATEWAY_ID}`);
  });

  it("refuses an upstream presenting another SPIFFE ID than the configured one", async () => {
    const before = upstream.requests.length;
    const r = await echo("impostor", "must not arrive");
    assert.ok(r.status >= 500, `expected a gateway error, got ${r.status}: ${r.text}`);
    assert.equal(upstream.requests.length, before, "no request was sent over the unverified connection");
    // The call's record says why the upstream was refused (an allow record may come first).
    await auditRecordsUntil(
      gw,
      (x) =>
        x.server === "impostor" &&
        /presented SPIFFE ID spiffe:\/\/example\.org\/ns\/tools\/sa\/mcp, expected/.test(x.reason),
    );
  });

  it("presents a rotated SVID from the next connection on, without a restart", async () => {
    const next = mintSvid(ca, { uris: [GATEWAY_ID] });
    const serial = new X509Certificate(next.cert).serialNumber;
    // A SPIFFE helper writes the key, then the certificate: the pair is used once consistent.
    writeFileSync(svidKey, next.key);
    writeFileSync(svidCert, next.cert);
    await waitFor("the gateway to present the rotated SVID", async () => {
      upstream.dropConnections();
      const r = await echo("tools", "after rotation");
      return r.status === 200 && upstream.requests.at(-1)?.clientCertificate?.serialNumber === serial;
    });
  });
});
