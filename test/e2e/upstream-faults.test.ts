/**
 * Issue 10 item 15, the fault suite: a real upstream that answers garbage, hangs, or keeps
 * crashing. The client always gets a spec-shaped JSON-RPC error (never the garbage as a
 * 200, never a wait for a restart backoff), and the fault is in the audit trail.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type RawHttpUpstream, startRawHttpUpstream } from "../fixtures/raw-http-upstream.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { withoutDecisionId } from "../helpers/mcp.js";

const CRASHING = resolve("dist/test/fixtures/crashing-server.js");

describe("upstream faults", () => {
  let upstream: RawHttpUpstream;
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    upstream = await startRawHttpUpstream([{ name: "echo", inputSchema: { type: "object" } }]);
    gw = await startGateway({
      config: {
        environment: "test",
        servers: {
          raw: { transport: "http", url: upstream.url, timeoutMs: 1500 },
          // One connection: what holds it decides whether anyone else gets through.
          narrow: { transport: "http", url: upstream.url, timeoutMs: 1500, connections: 1 },
          fragile: { transport: "stdio", command: process.execPath, args: [CRASHING] },
        },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "faults"])).key as string;
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  const call = (id: number, text: string) => {
    const m = modern(id, "tools/call", { name: "echo", arguments: { text } }, key);
    return rpc(gw.endpoint("raw"), m.body, m.headers);
  };

  const call2 = (server: string, id: number, text: string) => {
    const m = modern(id, "tools/call", { name: "echo", arguments: { text } }, key);
    return rpc(gw.endpoint(server), m.body, m.headers);
  };

  it("an HTTP upstream answering garbage gets the client a 502 JSON-RPC error, audited", async (t) => {
    // Positive control: the same upstream's JSON answer is relayed.
    const ok = await call(1, "fine");
    assert.equal(ok.status, 200, ok.text);
    const garbage: Record<string, { status: number; contentType?: string; body: string }> = {
      html: { status: 200, contentType: "text/html", body: "<html><body>Bad gateway</body></html>" },
      truncated: { status: 200, contentType: "application/json", body: '{"jsonrpc":"2.0","id":2,"res' },
      "not json-rpc": { status: 200, contentType: "application/json", body: "[1,2,3]" },
      "no type": { status: 200, body: "hello" },
      "server error page": { status: 500, contentType: "text/plain", body: "Internal Server Error" },
    };
    let id = 10;
    for (const [kind, reply] of Object.entries(garbage)) {
      upstream.override = (m) => (m.method === "tools/call" ? reply : null);
      const res = await call(++id, kind);
      t.diagnostic(
        `${kind}: upstream ${reply.status} ${reply.contentType ?? "-"} → client ${res.status} ${res.text}`,
      );
      assert.equal(res.status, 502, `${kind}: ${res.text}`);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.equal(res.json.id, id);
      assert.deepEqual(withoutDecisionId(res.json.error), {
        code: -32010,
        message: "Upstream sent an invalid response",
      });
    }
    upstream.override = null;
    const records = await auditRecordsUntil(
      gw,
      (r) => r.decision === "deny" && r.reason.includes("answered 500 with text/plain"),
    );
    const faults = records.filter((r) => r.decision === "deny" && r.reason.startsWith("forwarding failed"));
    assert.equal(faults.length, Object.keys(garbage).length, "every garbage reply left an audit record");
    assert.equal((await call(99, "again")).status, 200, "the upstream serves again once it answers JSON");
  });

  it("an HTTP upstream that hangs gets the client a 504 after servers.<name>.timeoutMs, audited", async (t) => {
    upstream.override = (m) => (m.method === "tools/call" ? "hang" : null);
    const res = await call(200, "hang");
    upstream.override = null;
    t.diagnostic(`hung upstream → client ${res.status} ${res.text}`);
    assert.equal(res.status, 504);
    assert.deepEqual(withoutDecisionId(res.json.error), { code: -32011, message: "Upstream timed out" });
    await auditRecordsUntil(gw, (r) => r.decision === "deny" && r.reason.includes("timed out"));
  });

  it("long-lived listen streams never hold the connections calls need, and a call waiting for a connection gets 504", {
    timeout: 120_000,
  }, async (t) => {
    upstream.override = (m) => {
      if (m.method === "subscriptions/listen") return "stream";
      const args = (m.params as { arguments?: { text?: string } } | undefined)?.arguments;
      return args?.text === "stream" ? "stream" : null;
    };
    const open = new AbortController();
    const openStream = async (method: string, params: Record<string, unknown>) => {
      const m = modern(500, method, params, key);
      const res = await fetch(gw.endpoint("narrow"), {
        method: "POST",
        headers: {
          ...m.headers,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify(m.body),
        signal: open.signal,
      });
      return res.status;
    };
    const started = Date.now();
    const at = () => `${Date.now() - started} ms`;
    try {
      // A subscriptions/listen stream stays open: the one call connection stays free.
      assert.equal(await openStream("subscriptions/listen", { notifications: {} }), 200);
      t.diagnostic(`listen stream open at ${at()}`);
      const served = await call2("narrow", 501, "served beside a listen stream");
      t.diagnostic(`with a listen stream open on a 1-connection pool, a call answered ${served.status}`);
      assert.equal(served.status, 200, served.text);
      // A call whose answer streams forever holds the only call connection: the next call,
      // waiting for it, is answered 504 at timeoutMs instead of waiting as long as the stream.
      assert.equal(await openStream("tools/call", { name: "echo", arguments: { text: "stream" } }), 200);
      t.diagnostic(`streaming call open at ${at()}`);
      const queued = await call2("narrow", 502, "queued");
      t.diagnostic(
        `behind a call holding the only connection, the next call answered ${queued.status} ${queued.text}`,
      );
      assert.equal(queued.status, 504, queued.text);
      assert.deepEqual(withoutDecisionId(queued.json.error), { code: -32011, message: "Upstream timed out" });
      assert.ok(
        !upstream
          .calls()
          .some((c) => (c.params as { arguments: { text: string } }).arguments.text === "queued"),
        "the queued call never reached the upstream",
      );
    } finally {
      open.abort();
      upstream.override = null;
    }
  });

  it("a stdio server that keeps crashing fails calls at once with 503 and Retry-After while it waits to restart", async (t) => {
    const crash = (id: number) => {
      const m = modern(id, "tools/call", { name: "crash", arguments: {} }, key);
      return rpc(gw.endpoint("fragile"), m.body, m.headers);
    };
    const seen: string[] = [];
    let backoff: { status: number; retryAfter: number; body: unknown } | null = null;
    for (let id = 300; id < 330 && backoff === null; id++) {
      const res = await crash(id);
      const retryAfter = Number(res.headers.get("retry-after") ?? "0");
      seen.push(`${res.status}${retryAfter ? ` (Retry-After ${retryAfter})` : ""}`);
      if (res.status === 503) {
        assert.deepEqual((res.json.error as { code: number }).code, -32010);
        assert.ok(retryAfter >= 1, res.text);
        // Keep crashing it until the backoff is long enough to be caught before it ends.
        if (retryAfter >= 2) backoff = { status: res.status, retryAfter, body: res.json };
        else await sleep(retryAfter * 1000);
      } else assert.equal(res.status, 502, res.text);
    }
    t.diagnostic(`answers while crashing the child again and again: ${seen.join(", ")}`);
    assert.ok(backoff !== null, "a restart backoff was answered with 503 instead of being waited out");
    assert.ok(seen.filter((s) => s.startsWith("502")).length >= 3, "the child crashed repeatedly first");
    // After the backoff, the child is restarted and serves again.
    await sleep(backoff.retryAfter * 1000);
    const m = modern(400, "tools/call", { name: "pid", arguments: {} }, key);
    const res = await rpc(gw.endpoint("fragile"), m.body, m.headers);
    assert.equal(res.status, 200, res.text);
  });
});
