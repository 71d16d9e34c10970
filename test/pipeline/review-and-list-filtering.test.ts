/**
 * The pipeline's review stage (a `review` decision, with and without a review gate) and
 * list filtering: a tools/list shows a caller exactly the tools a tools/call would let it
 * call or ask for, because both are decided by one "may call" rule (src/authz/mayCall.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MODERN, PipelineHarness, request, TOOLS, toolCall } from "./harness.js";

describe("pipeline: a review decision", () => {
  const withoutGate = new PipelineHarness();
  const withGate = new PipelineHarness({ reviewGate: true });
  before(async () => {
    await withoutGate.start();
    await withGate.start();
  });
  after(async () => {
    await withoutGate.stop();
    await withGate.stop();
  });

  it("is refused with -32041 and recorded as review when no review gate can hold it", async () => {
    const key = await withoutGate.key("agent");
    const n = withoutGate.audit.records.length;
    const reply = await withoutGate.post(key, toolCall("transfer", { amount: 5 }));
    assert.equal(reply.status, 200, "the refusal is the request's JSON-RPC error");
    assert.equal(reply.json.error?.code, -32041);
    const added = withoutGate.audit.records.slice(n);
    assert.equal(added.length, 1);
    assert.equal((reply.json.error?.data as { decisionId?: string }).decisionId, added[0]?.decisionId);
    assert.equal(added[0]?.decision, "review");
    assert.deepEqual(added[0]?.ruleIds, ["review-transfer"]);
    assert.ok(!withoutGate.upstream.calls.includes("tools/call transfer"), "nothing forwarded");
  });

  it("is held by the review gate: a 2026-07-28 client gets input_required, the trail a review record", async () => {
    const key = await withGate.key("agent");
    const call = toolCall("transfer", { amount: 5 });
    (call.params as Record<string, unknown>)._meta = { "io.modelcontextprotocol/protocolVersion": MODERN };
    const n = withGate.audit.records.length;
    const reply = await withGate.post(key, call, {
      "mcp-protocol-version": MODERN,
      "mcp-method": "tools/call",
      "mcp-name": "transfer",
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.json.result?.resultType, "input_required");
    assert.equal(typeof reply.json.result?.requestState, "string");
    const added = withGate.audit.records.slice(n);
    assert.equal(added.length, 1);
    assert.equal(added[0]?.decision, "review");
    assert.match(added[0]?.reason ?? "", /^review requested: approval /);
    assert.ok(!withGate.upstream.calls.includes("tools/call transfer"), "nothing forwarded before approval");
  });

  it("of a tool the upstream never listed is refused before it costs an approval", async () => {
    const key = await withGate.key("agent-2");
    const n = withGate.audit.records.length;
    const reply = await withGate.post(key, toolCall("wire_money", { amount: 5 }));
    assert.equal(reply.status, 400);
    assert.equal(reply.json.error?.code, -32602);
    const added = withGate.audit.records.slice(n);
    assert.equal(added.length, 1);
    assert.equal(added[0]?.decision, "deny");
    assert.equal(added[0]?.reason, "tool wire_money is not in the tools/list of demo: not sent to review");
    assert.deepEqual(added[0]?.detail, { event: "review.unknown_tool" });
  });
});

describe("pipeline: tools/list shows exactly what tools/call lets the caller call or ask for", () => {
  const h = new PipelineHarness();
  before(() => h.start());
  after(() => h.stop());

  it("hides tools outside the key's scope, blocked by a pin, or denied by policy, and calls agree", async () => {
    // In scope: echo (allowed), pinned (blocked), drop_tables (denied), transfer (review).
    const key = await h.key("scoped", ["demo:echo", "demo:pinned", "demo:drop_tables", "demo:transfer"]);
    h.blocked.add("pinned");
    const n = h.audit.records.length;
    const list = await h.post(key, request("tools/list"));
    assert.equal(list.status, 200);
    const shown = ((list.json.result?.tools as { name: string }[]) ?? []).map((t) => t.name).sort();
    assert.deepEqual(shown, ["echo", "transfer"]);
    assert.equal(h.audit.records[n]?.decision, "allow");
    assert.equal(h.audit.records[n]?.rpcMethod, "tools/list");
    // Every tool the upstream lists: shown if and only if a call is allowed or may be reviewed.
    for (const { name } of TOOLS) {
      if (name === "slow") continue; // outside the scope: refused before it could hang
      const reply = await h.post(key, toolCall(name));
      const callable = reply.json.error === undefined || reply.json.error.code === -32041;
      assert.equal(
        callable,
        shown.includes(name),
        `${name}: listed ${shown.includes(name)}, call ${reply.status}`,
      );
    }
    const slow = await h.post(key, toolCall("slow"));
    assert.equal(slow.json.error?.code, -32003);
    assert.ok(!shown.includes("slow"));
  });

  it("shows a server-wide key every tool policy lets it call or ask for", async () => {
    const key = await h.key("wide");
    h.blocked.clear();
    const list = await h.post(key, request("tools/list"));
    const shown = ((list.json.result?.tools as { name: string }[]) ?? []).map((t) => t.name).sort();
    assert.deepEqual(shown, ["add", "echo", "slow", "transfer"]);
  });
});
