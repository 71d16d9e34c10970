/**
 * SPIFFE JWT-SVIDs end to end: a real gateway process configured with trust bundle files, a
 * real MCP client (SDK v1) presenting a JWT-SVID as its bearer token, policy matching the
 * SPIFFE ID (`match.workloads`), and the refusals of test/authn/spiffe/jwt-svid-attacks
 * repeated at the HTTP edge (401, audited with the precise reason). The bundle file is
 * rewritten while the gateway runs.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway, tempDir } from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";
import {
  bundleDocument,
  type JwtAuthorityKey,
  mintJwtAuthority,
  mintJwtSvid,
  mintUnsignedOrSymmetric,
  writeBundle,
} from "../helpers/spiffe.js";
import { claimsOf, exchange, registerExchangeClient, taskDetails } from "../helpers/tokenExchange.js";
import { waitFor } from "../helpers/wait.js";

const CI_JOB = "spiffe://example.org/ns/ci/sa/builder";
const PROD_JOB = "spiffe://example.org/ns/prod/sa/api";

describe("JWT-SVID workload identity through the gateway", () => {
  const dir = tempDir("spiffe-e2e-jwt-");
  const bundleA = join(dir, "example.org.json");
  const bundleB = join(dir, "other.org.json");
  let keyA: JwtAuthorityKey;
  let keyA2: JwtAuthorityKey;
  let keyB: JwtAuthorityKey;
  let gw: RunningGateway;
  let endpoint: string;

  before(async () => {
    [keyA, keyA2, keyB] = await Promise.all([
      mintJwtAuthority("ES256"),
      mintJwtAuthority("RS256"),
      mintJwtAuthority("ES256"),
    ]);
    writeBundle(bundleA, bundleDocument([], [keyA, keyA2]));
    writeBundle(bundleB, bundleDocument([], [keyB]));
    const policy = join(dir, "policy.yaml");
    writeFileSync(
      policy,
      [
        "rules:",
        "  - id: ci-workloads-may-call",
        "    effect: allow",
        "    match:",
        '      workloads: ["spiffe://example.org/ns/ci/*/*"]',
      ].join("\n"),
    );
    gw = await startGateway({
      dir,
      config: {
        policy: { paths: [policy] },
        // The built-in authorization server, for the RFC 8693 exchange of an SVID below.
        oauth: { mode: "builtin" },
        spiffe: {
          trustDomains: [
            { name: "example.org", bundle: { file: bundleA } },
            { name: "other.org", bundle: { file: bundleB } },
          ],
        },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    endpoint = gw.endpoint("demo");
  });
  after(async () => {
    await gw?.stop();
  });

  const call = (token: string, id = 1) => {
    const m = modern(id, "tools/call", { name: "echo", arguments: { text: "hi" } });
    return rpc(endpoint, m.body, { ...m.headers, authorization: `Bearer ${token}` });
  };

  it("a CI workload calls a tool with its JWT-SVID through a real MCP client", async () => {
    const svid = await mintJwtSvid(keyA, { sub: CI_JOB, aud: endpoint });
    const client = new Client({ name: "ci-job", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(endpoint), {
        requestInit: { headers: { authorization: `Bearer ${svid}` } },
      }),
    );
    try {
      const result = await client.callTool({ name: "echo", arguments: { text: "from ci" } });
      assert.equal(textOf(result), "from ci");
    } finally {
      await client.close();
    }
    const records = await auditRecordsUntil(gw, (r) => r.principal === CI_JOB && r.tool === "echo");
    const rec = records.find((r) => r.principal === CI_JOB && r.tool === "echo");
    assert.equal(rec?.method, "jwt_svid");
    assert.equal(rec?.decision, "allow");
    assert.deepEqual(rec?.ruleIds, ["ci-workloads-may-call"]);
  });

  it("a workload trades its JWT-SVID for a one-tool task token (RFC 8693) and calls with it", async () => {
    const clientId = await registerExchangeClient(gw, "ci workload");
    const svid = await mintJwtSvid(keyA, { sub: CI_JOB, aud: endpoint });
    const answer = await exchange(gw, {
      client_id: clientId,
      subject_token: svid,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      resource: endpoint,
      authorization_details: taskDetails({
        purpose: "nightly build",
        tools: ["echo"],
        lifetime_seconds: 120,
      }),
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const token = answer.body.access_token as string;
    const claims = claimsOf(token);
    assert.equal(claims.sub, CI_JOB, "the task acts for the workload");
    const ok = await call(token, 3);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(textOf(ok.json.result), "hi");
    const m = modern(4, "tools/call", { name: "get_time", arguments: {} });
    const other = await rpc(endpoint, m.body, { ...m.headers, authorization: `Bearer ${token}` });
    assert.equal((other.json.error as { code?: number } | undefined)?.code, -32003, other.text);
    const records = await auditRecordsUntil(
      gw,
      (r) => r.method === "task" && r.principal === CI_JOB && r.tool === "echo",
    );
    const rec = records.find((r) => r.method === "task" && r.principal === CI_JOB && r.tool === "echo");
    assert.equal(rec?.detail?.task, claims.task_id);
    assert.deepEqual(rec?.detail?.actor, [`client:${clientId}`]);
  });

  it("policy denies a workload whose SPIFFE ID the rule does not match", async () => {
    const r = await call(await mintJwtSvid(keyA, { sub: PROD_JOB, aud: endpoint }), 2);
    assert.equal((r.json.error as { code?: number } | undefined)?.code, -32040, r.text);
    await auditRecordsUntil(gw, (x) => x.principal === PROD_JOB && x.decision === "deny");
  });

  const refused = async (what: string, token: string, reason: RegExp) => {
    const r = await call(token);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
    await auditRecordsUntil(gw, (x) => x.decision === "deny" && reason.test(x.reason));
  };

  it("refuses a JWT-SVID of trust domain A signed with trust domain B's key", async () => {
    await refused(
      "cross-domain",
      await mintJwtSvid(keyB, { sub: CI_JOB, aud: endpoint }),
      /is not a jwt-svid key of trust domain example\.org/,
    );
  });

  it("refuses an expired JWT-SVID", async () => {
    await refused(
      "expired",
      await mintJwtSvid(keyA, { sub: CI_JOB, aud: endpoint, expiresIn: -60 }),
      /expired/,
    );
  });

  it("refuses a JWT-SVID for another audience, and one without aud", async () => {
    await refused(
      "wrong audience",
      await mintJwtSvid(keyA, { sub: CI_JOB, aud: `${gw.url}/mcp/other`, jti: "wrong-aud" }),
      /audience .*mcp\/other.* does not contain this resource/,
    );
    await refused("missing aud", await mintJwtSvid(keyA, { sub: CI_JOB }), /claim aud missing/);
  });

  it("refuses HS256 and alg none JWT-SVIDs", async () => {
    const claims = { sub: CI_JOB, aud: endpoint, exp: Math.floor(Date.now() / 1000) + 300 };
    await refused(
      "HS256",
      await mintUnsignedOrSymmetric("HS256", keyA.kid, claims),
      /algorithm "HS256" is not allowed/,
    );
    await refused(
      "none",
      await mintUnsignedOrSymmetric("none", keyA.kid, claims),
      /algorithm "none" is not allowed/,
    );
  });

  it("refuses a sub that is not a SPIFFE ID of a configured trust domain", async () => {
    await refused(
      "unconfigured domain",
      await mintJwtSvid(keyA, { sub: "spiffe://evil.example/ns/ci/sa/builder", aud: endpoint }),
      /trust domain evil\.example is not configured/,
    );
    await refused(
      "malformed id",
      await mintJwtSvid(keyA, { sub: "spiffe://example.org:8443/ns/ci/sa/builder", aud: endpoint }),
      /sub is not a SPIFFE ID/,
    );
  });

  it("refuses an SVID signed by a key removed in a bundle rewritten while running", async () => {
    const svid = await mintJwtSvid(keyA, { sub: CI_JOB, aud: endpoint });
    assert.equal((await call(svid)).status, 200, "accepted (and cached) before the rotation");
    writeBundle(bundleA, bundleDocument([], [keyA2], 2));
    await waitFor("the rotation to take effect", async () => (await call(svid)).status === 401);
    await auditRecordsUntil(gw, (x) => /is not a jwt-svid key/.test(x.reason) && x.principal === null);
    // The key that stayed in the bundle keeps working.
    assert.equal((await call(await mintJwtSvid(keyA2, { sub: CI_JOB, aud: endpoint }))).status, 200);
    assert.ok(
      gw.logs.some((l) => l.msg === "SPIFFE trust bundle reloaded" && l.trustDomain === "example.org"),
    );
  });
});
