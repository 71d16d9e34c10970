/**
 * The request pipeline in-process (src/pipeline/): an allowed call is forwarded and
 * recorded, and every kind of refusal reaches the client as its own HTTP status and JSON-RPC
 * error code while the audit trail gets one record naming the decision and the precise reason.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import type { AuditRecord } from "../../src/store/types.js";
import { OTHER, PipelineHarness, type Reply, request, toolCall } from "./harness.js";

/**
 * The one new audit record a request left; for a refusal, the decision id the client was
 * given (`error.data.decisionId`) is the record's.
 */
function recordOf(h: PipelineHarness, before: number, reply: Reply): AuditRecord {
  const added = h.audit.records.slice(before);
  assert.equal(
    added.length,
    1,
    `one audit record per decision, got ${JSON.stringify(added.map((r) => r.reason))}`,
  );
  const record = added[0] as AuditRecord;
  if (reply.json.error !== undefined) {
    assert.ok(record.decisionId, "the record of a refusal has a decision id");
    assert.equal(decisionIdOf(reply), record.decisionId, "the reply names the record's decision id");
  }
  return record;
}

function decisionIdOf(reply: Reply): string | undefined {
  return (reply.json.error?.data as { decisionId?: string } | undefined)?.decisionId;
}

function errorCode(reply: Reply): number | undefined {
  return reply.json.error?.code;
}

describe("pipeline: allow and each refusal, on the wire and in the audit trail", () => {
  const h = new PipelineHarness({
    callsInFlightPerCaller: 1,
    routeScopes: ["mcp:read"],
    toolScopes: { add: ["mcp:tools"] },
    oauthScopes: ["mcp:read"],
  });
  let key = "";

  before(async () => {
    await h.start();
    key = await h.key("main");
  });
  after(() => h.stop());

  it("forwards an allowed tools/call and records the allow with the deciding rule", async () => {
    const n = h.audit.records.length;
    const reply = await h.post(key, toolCall("echo", { text: "hi" }));
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.json.result?.content, [{ type: "text", text: "ran echo" }]);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "allow");
    assert.deepEqual(r.ruleIds, ["allow-tools"]);
    assert.ok(r.reason.length > 0);
    assert.equal(r.tool, "echo");
    assert.deepEqual(r.arguments, { text: "hi" });
    assert.ok(h.upstream.calls.includes("tools/call echo"));
  });

  it("answers 401 -32001 with a Bearer challenge when no credential is presented", async () => {
    const n = h.audit.records.length;
    const reply = await h.post(null, toolCall("echo"));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), -32001);
    assert.match(reply.headers.get("www-authenticate") ?? "", /^Bearer resource_metadata="/);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "no credential presented");
  });

  it("answers 401 -32001 for a tampered key, the precise reason only in the audit log", async () => {
    const n = h.audit.records.length;
    const tampered = `${key.slice(0, -3)}${key.endsWith("AAA") ? "BBB" : "AAA"}`;
    const reply = await h.post(tampered, toolCall("echo"));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), -32001);
    assert.equal(reply.json.error?.message, "Unauthorized");
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.match(r.reason, /checksum|malformed|unknown/);
  });

  it("answers 404 -32601 for an unknown server, only after authentication, echoing the request's id", async () => {
    const n = h.audit.records.length;
    const call = toolCall("echo");
    const reply = await h.post(key, call, {}, "nope");
    assert.equal(reply.status, 404);
    assert.equal(errorCode(reply), -32601);
    assert.equal(reply.json.id, call.id);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "unknown server");
    assert.equal(r.server, "nope");
  });

  it("answers a server outside the key's scope with the JSON-RPC error -32003 of the request's own id (not id null)", async () => {
    const elsewhere = await h.key("elsewhere", [OTHER]);
    const n = h.audit.records.length;
    const call = toolCall("echo");
    const reply = await h.post(elsewhere, call);
    assert.equal(reply.status, 200, "an authorization refusal is the request's JSON-RPC error");
    assert.equal(errorCode(reply), -32003);
    assert.equal(reply.json.id, call.id, "the refusal echoes the request's id");
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "server demo is outside the credential's scope");
  });

  it("keeps HTTP 403 for a notification outside the key's scope: it has no id to answer", async () => {
    const elsewhere = await h.key("elsewhere-2", [OTHER]);
    const n = h.audit.records.length;
    const reply = await h.post(elsewhere, { jsonrpc: "2.0", method: "notifications/initialized" });
    assert.equal(reply.status, 403);
    assert.equal(reply.json.id, null);
    assert.equal(errorCode(reply), -32003);
    recordOf(h, n, reply);
  });

  it("answers -32003 for a tool outside a tool-scoped key, before anything is forwarded", async () => {
    const echoOnly = await h.key("echo-only", ["demo:echo"]);
    const n = h.audit.records.length;
    const forwarded = h.upstream.calls.length;
    const call = toolCall("add", { a: 1 });
    const reply = await h.post(echoOnly, call);
    assert.equal(reply.status, 200);
    assert.equal(errorCode(reply), -32003);
    assert.equal(reply.json.id, call.id, "the error echoes the request id");
    assert.match(reply.json.error?.message ?? "", /^Forbidden \(decision [\w-]+\)$/);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "tool add is outside the credential's scope");
    assert.equal(h.upstream.calls.length, forwarded);
  });

  it("answers -32003 for a method a tool-scoped key cannot reach", async () => {
    const echoOnly = await h.key("echo-only-2", ["demo:echo"]);
    const n = h.audit.records.length;
    const reply = await h.post(echoOnly, request("resources/list"));
    assert.equal(reply.status, 200);
    assert.equal(errorCode(reply), -32003);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "resources/list needs a server-wide scope; the credential is scoped to tools");
  });

  it("answers 403 insufficient_scope naming every scope a tool needs when the token lacks one", async () => {
    const n = h.audit.records.length;
    const reply = await h.post(h.oauthToken, toolCall("add", { a: 1 }));
    assert.equal(reply.status, 403);
    assert.equal(errorCode(reply), -32003);
    const challenge = reply.headers.get("www-authenticate") ?? "";
    assert.match(challenge, /error="insufficient_scope"/);
    assert.match(challenge, /scope="mcp:read mcp:tools"/);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "token lacks scope(s) mcp:tools");
    assert.equal(r.principal, "user:alice");
  });

  it("a tool named after an Object.prototype member (valueOf, constructor) cannot turn the OAuth scope check into a 500", async () => {
    for (const name of ["valueOf", "constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const n = h.audit.records.length;
      const reply = await h.post(h.oauthToken, toolCall(name));
      assert.notEqual(reply.status, 500, `${name}: ${JSON.stringify(reply.json)}`);
      const r = recordOf(h, n, reply);
      assert.notEqual(r.reason, undefined, name);
    }
  });

  it("answers 403 before authentication for a foreign Host (DNS rebinding), with the decision id of its record", async () => {
    const n = h.audit.records.length;
    const body = JSON.stringify(toolCall("echo"));
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = httpRequest(
        `${h.url}/mcp/demo`,
        {
          method: "POST",
          headers: {
            host: "evil.example.com",
            "content-type": "application/json",
            authorization: `Bearer ${key}`,
          },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString();
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: new Headers(),
              json: JSON.parse(text) as Reply["json"],
            }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    assert.equal(reply.status, 403, "the transport-level refusal stays HTTP 403");
    assert.equal(reply.json.id, null, "a request refused before authentication is not parsed");
    const r = recordOf(h, n, reply);
    assert.match(r.reason, /evil\.example\.com/);
  });

  it("answers 400 -32700 for a body that is not JSON", async () => {
    const n = h.audit.records.length;
    const reply = await h.post(key, "{not json");
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), -32700);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "body is not valid JSON");
  });

  it("answers 415 -32600 for a body that is not application/json", async () => {
    const n = h.audit.records.length;
    const call = toolCall("echo");
    const reply = await h.post(key, JSON.stringify(call), { "content-type": "text/plain" });
    assert.equal(reply.status, 415);
    assert.equal(reply.json.id, call.id, "the id is read from the body of an authenticated caller");
    assert.equal(errorCode(reply), -32600);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.equal(r.reason, "content-type text/plain");
  });

  it("answers -32020 when Mcp-Method disagrees with the body, and forwards nothing", async () => {
    const n = h.audit.records.length;
    const forwarded = h.upstream.calls.length;
    const reply = await h.post(key, toolCall("echo"), { "mcp-method": "tools/list" });
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), -32020);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.match(r.reason, /Mcp-Method header value 'tools\/list' does not match body value 'tools\/call'/);
    assert.equal(h.upstream.calls.length, forwarded);
  });

  it("answers 429 -32014 with Retry-After when the caller already has its calls in flight", async () => {
    const busy = await h.key("busy");
    const first = h.post(busy, toolCall("slow"));
    for (let i = 0; i < 200 && !h.upstream.calls.includes("tools/call slow"); i++)
      await new Promise((r) => setTimeout(r, 10));
    const n = h.audit.records.length;
    const reply = await h.post(busy, toolCall("echo"));
    assert.equal(reply.status, 429);
    assert.equal(errorCode(reply), -32014);
    assert.equal(reply.headers.get("retry-after"), "1");
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.match(r.reason, /caller already has 1 calls in flight on demo/);
    assert.deepEqual(r.detail, { event: "limit.calls_in_flight" });
    h.upstream.releaseSlow();
    assert.equal((await first).status, 200);
    // The slot is released with the response: the caller may call again.
    assert.equal((await h.post(busy, toolCall("echo"))).status, 200);
  });

  it("answers -32042 for a tool blocked by its pin, whatever policy says", async () => {
    h.blocked.add("echo");
    try {
      const n = h.audit.records.length;
      const reply = await h.post(key, toolCall("echo"));
      assert.equal(reply.status, 200);
      assert.equal(errorCode(reply), -32042);
      const r = recordOf(h, n, reply);
      assert.equal(r.decision, "deny");
      assert.equal(r.reason, "tool echo changed since it was pinned; blocked until an operator accepts it");
      assert.ok(r.decisionId && reply.json.error?.message.includes(r.decisionId));
    } finally {
      h.blocked.delete("echo");
    }
  });

  it("answers -32040 for a policy deny, giving the client the decision id the audit record holds", async () => {
    const n = h.audit.records.length;
    const reply = await h.post(key, toolCall("drop_tables"));
    assert.equal(reply.status, 200);
    assert.equal(errorCode(reply), -32040);
    const r = recordOf(h, n, reply);
    assert.equal(r.decision, "deny");
    assert.deepEqual(r.ruleIds, ["deny-drop"]);
    assert.ok(r.reason.length > 0);
    assert.ok(r.decisionId && reply.json.error?.message.includes(`(decision ${r.decisionId})`));
  });

  it("gives each decision its own id", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const reply = await h.post(key, toolCall("drop_tables"));
      ids.add(String((reply.json.error as { data?: { decisionId?: string } }).data?.decisionId));
    }
    assert.equal(ids.size, 5);
  });

  it("answers 503 -32019 before any work when the audit trail cannot take more, and counts it", async () => {
    h.audit.full = true;
    try {
      const n = h.audit.records.length;
      const forwarded = h.upstream.calls.length;
      const reply = await h.post(key, toolCall("echo"));
      assert.equal(reply.status, 503);
      assert.equal(errorCode(reply), -32019);
      assert.equal(reply.headers.get("retry-after"), "1");
      assert.equal(h.audit.records.length, n, "nothing can be recorded");
      assert.equal(h.audit.unrecorded, 1, "the refusal is counted as unrecorded");
      assert.equal(decisionIdOf(reply), undefined, "no decision id that no record holds");
      assert.equal(h.upstream.calls.length, forwarded);
    } finally {
      h.audit.full = false;
    }
  });

  it("answers 503 -32019 (never 401) when keys cannot be reloaded from the store, failing closed", async () => {
    h.keyring.failing = true;
    try {
      const n = h.audit.records.length;
      const reply = await h.post(key, toolCall("echo"));
      assert.equal(reply.status, 503);
      assert.equal(errorCode(reply), -32019);
      const r = recordOf(h, n, reply);
      assert.equal(r.decision, "deny");
      assert.equal(r.reason, "key store unavailable: failing closed");
    } finally {
      h.keyring.failing = false;
    }
  });

  it("refuses with 500 and records a deny when policy evaluation fails: a fault is never an allow", async () => {
    h.policyFault = true;
    try {
      const n = h.audit.records.length;
      const forwarded = h.upstream.calls.length;
      const reply = await h.post(key, toolCall("echo"));
      assert.equal(reply.status, 500);
      assert.equal(errorCode(reply), -32603);
      const r = recordOf(h, n, reply);
      assert.equal(r.decision, "deny");
      assert.equal(r.reason, "policy evaluation failed");
      assert.equal(h.upstream.calls.length, forwarded);
    } finally {
      h.policyFault = false;
    }
  });
});
