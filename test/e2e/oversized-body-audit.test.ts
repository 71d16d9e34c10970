/**
 * Issue 10 item 17: a request refused with 413 (body over `limits.bodyBytes`) is refused
 * before the route runs, and left no audit record: a caller could send oversized requests
 * unseen. Every 413 on an MCP endpoint is now a deny record naming the caller when its
 * credential is valid.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";

describe("oversized request audit", () => {
  let gw: RunningGateway;
  let key: string;
  let keyId: string;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        limits: { bodyBytes: 2048 },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const created = await gw.cli(["keys", "create", "--name", "big-sender"]);
    key = created.key as string;
    keyId = created.id as string;
  });
  after(() => gw.stop());

  it("an authenticated request refused with 413 leaves a deny record naming its caller", async () => {
    // Positive control: the same call, small, is allowed and recorded.
    const small = modern(1, "tools/call", { name: "echo", arguments: { text: "small" } }, key);
    assert.equal((await rpc(gw.endpoint("demo"), small.body, small.headers)).status, 200);
    const big = modern(2, "tools/call", { name: "echo", arguments: { text: "x".repeat(10_000) } }, key);
    const res = await rpc(gw.endpoint("demo"), big.body, big.headers);
    assert.equal(res.status, 413);
    assert.equal((res.json.error as { code: number }).code, -32013);
    const records = await auditRecordsUntil(gw, (r) => r.reason.includes("limits.bodyBytes"));
    const refused = records.find((r) => r.reason.includes("limits.bodyBytes"));
    assert.equal(refused?.decision, "deny");
    assert.equal(refused?.principal, `key:${keyId}`);
    assert.equal(refused?.credentialId, keyId);
    assert.equal(refused?.server, "demo");
    const error = res.json.error as { data?: { decisionId?: string } };
    assert.ok(refused?.decisionId, "the record has a decision id");
    assert.equal(error.data?.decisionId, refused?.decisionId, "the 413 names the record's decision id");
  });
});
