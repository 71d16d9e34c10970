/**
 * SPIFFE X.509-SVIDs over mutual TLS end to end: the gateway serves HTTPS with
 * `listen.tls.clientAuth: request`, a real MCP client (SDK v1) presents an X.509-SVID as its
 * client certificate, policy matches its SPIFFE ID, and every broken certificate is refused
 * (401, audited with the precise reason). The trust bundle file is rotated while running.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type Agent, fetch as undiciFetch } from "undici";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { DEMO_SERVER, modern, type RunningGateway, startGateway, tempDir } from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";
import {
  type Authority,
  bundleDocument,
  type JwtAuthorityKey,
  mintAuthority,
  mintJwtAuthority,
  mintJwtSvid,
  mintServerCert,
  mintSvid,
  opensslSkip,
  type Pem,
  tlsAgent,
  writeBundle,
} from "../helpers/spiffe.js";
import { waitFor } from "../helpers/wait.js";

const OPENSSL_SKIP = opensslSkip();

const CI_JOB = "spiffe://example.org/ns/ci/sa/builder";
const PROD_JOB = "spiffe://example.org/ns/prod/sa/api";

describe("X.509-SVID workload identity over mutual TLS", { skip: OPENSSL_SKIP }, () => {
  const dir = tempDir("spiffe-e2e-mtls-");
  const bundleA = join(dir, "example.org.json");
  const bundleB = join(dir, "other.org.json");
  let web: Authority;
  let caA: Authority;
  let caB: Authority;
  let jwtKey: JwtAuthorityKey;
  let gw: RunningGateway;
  let endpoint: string;
  const agents: Agent[] = [];

  before(async () => {
    web = mintAuthority(dir, "web");
    caA = mintAuthority(dir, "example.org");
    caB = mintAuthority(dir, "other.org");
    jwtKey = await mintJwtAuthority("ES256");
    const serving = mintServerCert(web);
    writeBundle(bundleA, bundleDocument([caA], [jwtKey]));
    writeBundle(bundleB, bundleDocument([caB], []));
    const policy = join(dir, "policy.yaml");
    writeFileSync(
      policy,
      [
        "rules:",
        "  - id: ci-workloads-may-call",
        "    effect: allow",
        "    match:",
        '      workloads: ["spiffe://example.org/ns/ci/**"]',
      ].join("\n"),
    );
    gw = await startGateway({
      dir,
      config: {
        listen: {
          port: 0,
          tls: { cert: { file: serving.certFile }, key: { file: serving.keyFile }, clientAuth: "request" },
        },
        policy: { paths: [policy] },
        spiffe: {
          trustDomains: [
            { name: "example.org", bundle: { file: bundleA } },
            { name: "other.org", bundle: { file: bundleB } },
          ],
        },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    assert.match(gw.url, /^https:\/\//);
    endpoint = gw.endpoint("demo");
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await gw?.stop();
  });

  const agentFor = (client?: Pick<Pem, "cert" | "key">) => {
    const agent = tlsAgent(web.cert, client);
    agents.push(agent);
    return agent;
  };

  const call = async (
    client: Pick<Pem, "cert" | "key"> | undefined,
    headers: Record<string, string> = {},
  ) => {
    const m = modern(1, "tools/call", { name: "echo", arguments: { text: "hi" } });
    const res = await undiciFetch(endpoint, {
      method: "POST",
      dispatcher: agentFor(client),
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...m.headers,
        ...headers,
      },
      body: JSON.stringify(m.body),
    });
    const text = await res.text();
    return { status: res.status, text, json: JSON.parse(text) as { error?: { code: number } } };
  };

  it("a CI workload reaches a tool over https with its X.509-SVID (real MCP client)", async () => {
    const svid = mintSvid(caA, { uris: [CI_JOB] });
    const dispatcher = agentFor(svid);
    const client = new Client({ name: "ci-job", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(endpoint), {
        fetch: (url, init) => undiciFetch(url, { ...(init as object), dispatcher }) as Promise<Response>,
      }),
    );
    try {
      assert.equal(textOf(await client.callTool({ name: "echo", arguments: { text: "mtls" } })), "mtls");
    } finally {
      await client.close();
    }
    const records = await auditRecordsUntil(gw, (r) => r.principal === CI_JOB && r.tool === "echo");
    const rec = records.find((r) => r.principal === CI_JOB && r.tool === "echo");
    assert.equal(rec?.method, "mtls");
    assert.deepEqual(rec?.ruleIds, ["ci-workloads-may-call"]);
  });

  it("policy denies a workload whose SPIFFE ID the rule does not match", async () => {
    const r = await call(mintSvid(caA, { uris: [PROD_JOB] }));
    assert.equal(r.json.error?.code, -32040, r.text);
    await auditRecordsUntil(
      gw,
      (x) => x.principal === PROD_JOB && x.method === "mtls" && x.decision === "deny",
    );
  });

  const refused = async (what: string, svid: Pem, reason: RegExp) => {
    const r = await call(svid);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    await auditRecordsUntil(gw, (x) => x.decision === "deny" && reason.test(x.reason));
  };

  it("refuses a client certificate without a SPIFFE URI SAN", async () => {
    await refused("no URI SAN", mintSvid(caA, { uris: [], dns: ["builder.example.org"] }), /has no URI SAN/);
  });

  it("refuses a client certificate with two URI SANs", async () => {
    await refused("two URI SANs", mintSvid(caA, { uris: [CI_JOB, PROD_JOB] }), /has 2 URI SANs/);
  });

  it("refuses a certificate naming example.org issued by another trust domain's CA", async () => {
    await refused(
      "foreign CA",
      mintSvid(caB, { uris: [CI_JOB] }),
      /does not reach an X\.509 authority of trust domain example\.org/,
    );
  });

  it("refuses an expired X.509-SVID", async () => {
    const expired = mintSvid(caA, {
      uris: [CI_JOB],
      notBefore: new Date(Date.now() - 2 * 3600_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    await refused("expired", expired, /the client certificate expired/);
  });

  it("refuses a CA certificate presented as a leaf SVID", async () => {
    await refused("CA as leaf", mintSvid(caA, { uris: [CI_JOB], ca: true }), /is a CA certificate/);
  });

  it("answers 401 when neither a certificate nor a bearer token is presented", async () => {
    const r = await call(undefined);
    assert.equal(r.status, 401, r.text);
  });

  it("refuses a JWT-SVID naming another workload than the client certificate", async () => {
    const token = await mintJwtSvid(jwtKey, { sub: PROD_JOB, aud: endpoint });
    const r = await call(mintSvid(caA, { uris: [CI_JOB] }), { authorization: `Bearer ${token}` });
    assert.equal(r.status, 401, r.text);
    await auditRecordsUntil(gw, (x) =>
      /bearer token names workload .*prod.* but the client certificate names/.test(x.reason),
    );
    const same = await mintJwtSvid(jwtKey, { sub: CI_JOB, aud: endpoint });
    assert.equal(
      (await call(mintSvid(caA, { uris: [CI_JOB] }), { authorization: `Bearer ${same}` })).status,
      200,
    );
  });

  it("a bundle rotated while running takes effect, on open connections too", async () => {
    const before = mintSvid(caA, { uris: [CI_JOB] });
    const dispatcher = agentFor(before);
    const m = modern(7, "tools/call", { name: "echo", arguments: { text: "x" } });
    const post = () =>
      undiciFetch(endpoint, {
        method: "POST",
        dispatcher,
        headers: { "content-type": "application/json", accept: "application/json", ...m.headers },
        body: JSON.stringify(m.body),
      }).then(async (r) => {
        await r.text();
        return r.status;
      });
    assert.equal(await post(), 200);
    const caA2 = mintAuthority(dir, "example.org");
    writeBundle(bundleA, bundleDocument([caA2], [jwtKey], 2));
    await waitFor("the rotated bundle to refuse the old CA's SVID", async () => (await post()) === 401);
    assert.equal((await call(mintSvid(caA2, { uris: [CI_JOB] }))).status, 200);
  });
});

describe("listen.tls.clientAuth: require", { skip: OPENSSL_SKIP }, () => {
  const dir = tempDir("spiffe-e2e-require-");
  let web: Authority;
  let ca: Authority;
  let gw: RunningGateway;
  let serving: Pem;
  const agents: Agent[] = [];

  before(async () => {
    web = mintAuthority(dir, "web");
    ca = mintAuthority(dir, "example.org");
    serving = mintServerCert(web);
    const bundle = join(dir, "example.org.json");
    writeBundle(bundle, bundleDocument([ca], []));
    gw = await startGateway({
      dir,
      config: {
        listen: {
          port: 0,
          tls: { cert: { file: serving.certFile }, key: { file: serving.keyFile }, clientAuth: "require" },
        },
        spiffe: { trustDomains: [{ name: "example.org", bundle: { file: bundle } }] },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await gw?.stop();
  });

  const post = async (client?: Pick<Pem, "cert" | "key">) => {
    const dispatcher = tlsAgent(web.cert, client);
    agents.push(dispatcher);
    const m = modern(1, "tools/call", { name: "echo", arguments: { text: "hi" } });
    const res = await undiciFetch(gw.endpoint("demo"), {
      method: "POST",
      dispatcher,
      headers: { "content-type": "application/json", accept: "application/json", ...m.headers },
      body: JSON.stringify(m.body),
    });
    await res.text();
    return res.status;
  };

  it("closes a connection that presents no client certificate, before any HTTP exchange", async () => {
    await assert.rejects(post(undefined), /fetch failed|socket|other side closed/i);
  });

  it("serves a workload presenting its X.509-SVID", async () => {
    assert.equal(await post(mintSvid(ca, { uris: [CI_JOB] })), 200);
  });
});

describe("the gateway's own serving certificate", { skip: OPENSSL_SKIP }, () => {
  it("is replaced from the next handshake when its files are rewritten, without a restart", async () => {
    const dir = tempDir("spiffe-e2e-serving-");
    const web = mintAuthority(dir, "web");
    const first = mintServerCert(web);
    const certFile = join(dir, "server.pem");
    const keyFile = join(dir, "server-key.pem");
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    const gw = await startGateway({
      dir,
      config: {
        listen: { port: 0, tls: { cert: { file: certFile }, key: { file: keyFile } } },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    try {
      const port = Number(new URL(gw.url).port);
      const servedSerial = () =>
        new Promise<string>((resolve, reject) => {
          const socket = tlsConnect({ host: "127.0.0.1", port, ca: web.cert }, () => {
            resolve(socket.getPeerCertificate().serialNumber);
            socket.end();
          });
          socket.on("error", reject);
        });
      assert.equal(await servedSerial(), new X509Certificate(first.cert).serialNumber);
      const next = mintServerCert(web);
      // A helper writes the key, then the certificate: the mismatched pair in between is skipped.
      writeFileSync(keyFile, next.key);
      writeFileSync(certFile, next.cert);
      const serial = new X509Certificate(next.cert).serialNumber;
      await waitFor("the rotated serving certificate", async () => (await servedSerial()) === serial);
    } finally {
      await gw.stop();
    }
  });
});
