/**
 * What an operator sees: health and readiness probes, Prometheus metrics by server, method
 * and outcome, and one audit record per authentication decision — never a secret.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mintKey } from "../../src/authn/keyFormat.js";
import type { StoredAuditRecord } from "../../src/store/types.js";
import { auditRecords } from "../helpers/audit.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait.js";

describe("observability", () => {
  let gw: RunningGateway;
  let key: string;
  let keyId: string;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const created = await gw.cli(["keys", "create", "--name", "observed"]);
    key = created.key as string;
    keyId = created.id as string;
  });
  after(() => gw.stop());

  it("answers /healthz and /readyz", async () => {
    assert.deepEqual(await (await fetch(`${gw.url}/healthz`)).json(), { status: "ok" });
    const ready = await fetch(`${gw.url}/readyz`);
    assert.equal(ready.status, 200);
  });

  it("counts requests by server, method and outcome, with latency histograms", async () => {
    const ok = modern(1, "tools/call", { name: "get_time", arguments: {} }, key);
    assert.equal((await rpc(gw.endpoint("demo"), ok.body, ok.headers)).status, 200);
    const bad = modern(2, "tools/list");
    assert.equal((await rpc(gw.endpoint("demo"), bad.body, bad.headers)).status, 401);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(text, /portcullis_requests_total\{server="demo",method="tools\/call",outcome="allowed"\} 1/);
    assert.match(text, /portcullis_requests_total\{server="demo",method="none",outcome="401"\} 1/);
    assert.match(
      text,
      /portcullis_request_duration_seconds_bucket\{le="0\.005",server="demo",method="tools\/call"\}/,
    );
    assert.match(text, /portcullis_upstream_processes\{server="demo"\} 1/);
  });

  it("writes an audit record for every authentication decision, with who, what and how long", async () => {
    // Records decided from now on (not by seq: the previous test's records may still be
    // waiting for their group commit, and would then come after any seq read here).
    const since = new Date();
    // Four requests, four authentication decisions: one allowed, three refused differently.
    const sent: Array<[string | undefined, number]> = [
      [key, 200],
      [undefined, 401],
      [mintKey("test").key, 401],
      ["nonsense", 401],
    ];
    for (const [credential, status] of sent) {
      const m = modern(9, "tools/call", { name: "get_time", arguments: {} }, credential);
      assert.equal((await rpc(gw.endpoint("demo"), m.body, m.headers)).status, status);
    }
    const fresh = await waitFor("one audit record per request", async () => {
      const rows = await auditRecords(gw, { since });
      return rows.length >= sent.length && rows;
    });
    assert.deepEqual(
      fresh.map((r) => [r.decision, r.reason]),
      [
        ["allow", fresh[0]?.reason],
        ["deny", "no credential presented"],
        ["deny", "unknown key id"],
        ["deny", "malformed key"],
      ],
      "exactly one record per decision, in order",
    );
    const [allowed] = fresh as [StoredAuditRecord];
    assert.equal(allowed.tool, "get_time");
    assert.equal(allowed.credentialId, keyId);
    assert.equal(allowed.principal, `key:${keyId}`);
    assert.equal(allowed.method, "api_key");
    assert.equal(allowed.environment, "test");
    assert.equal(allowed.server, "demo");
    assert.equal(allowed.rpcMethod, "tools/call");
    assert.ok(allowed.latencyUs >= 0);
    assert.ok(!JSON.stringify(await auditRecords(gw)).includes(key));
  });
});
