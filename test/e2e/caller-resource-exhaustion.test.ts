/**
 * Issue 10 items 7 and 15: one caller must not exhaust what every caller shares. A key that
 * opens GET stream after GET stream, or parks hung calls on an upstream until its whole
 * connection pool is taken, is refused with 429, Retry-After and a JSON-RPC error once it
 * reaches its cap, and the refused request never reaches the upstream; other callers go on.
 * A key that opens session after session only ever ends its own oldest ones.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { withoutDecisionId } from "../helpers/mcp.js";
import { sample, scrape } from "../helpers/metrics.js";

const LEGACY = "2025-11-25";

describe("per-caller caps", () => {
  let upstream: HttpUpstream;
  let gw: RunningGateway;
  let keyA: string;
  let keyB: string;

  before(async () => {
    upstream = await startHttpUpstream();
    gw = await startGateway({
      config: {
        environment: "test",
        limits: {
          callsInFlightPerCaller: 2,
          streamsPerCaller: 2,
          streamsPerSession: 1,
          sessionsPerCaller: 3,
        },
        // Three connections: one caller with two hung calls must leave one for everyone else.
        servers: { up: { transport: "http", url: upstream.url, connections: 3 } },
      },
    });
    keyA = (await gw.cli(["keys", "create", "--name", "hog"])).key as string;
    keyB = (await gw.cli(["keys", "create", "--name", "neighbour"])).key as string;
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  async function session(key: string): Promise<string> {
    const res = await rpc(
      gw.endpoint("up"),
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: "flood", version: "1" } },
      },
      { authorization: `Bearer ${key}` },
    );
    assert.equal(res.status, 200, res.text);
    const id = res.headers.get("mcp-session-id");
    assert.ok(id);
    return id;
  }

  /** Opens a GET stream; resolves with its status once headers arrive (the stream stays open). */
  async function openStream(key: string, sessionId: string, signal: AbortSignal) {
    const res = await fetch(gw.endpoint("up"), {
      headers: {
        authorization: `Bearer ${key}`,
        accept: "text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": LEGACY,
      },
      signal,
    });
    if (res.status !== 200)
      return { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.json() };
    return { status: res.status, retryAfter: null, body: null };
  }

  const upstreamGets = () => upstream.requests.filter((r) => r.method === "GET").length;

  it("one key opening GET stream after GET stream is capped per session and per caller", async (t) => {
    const streams = new AbortController();
    try {
      const [s1, s2, s3] = [await session(keyA), await session(keyA), await session(keyA)];
      const before = upstreamGets();
      const first = await openStream(keyA, s1, streams.signal);
      const sameSession = await openStream(keyA, s1, streams.signal);
      const second = await openStream(keyA, s2, streams.signal);
      const third = await openStream(keyA, s3, streams.signal);
      const other = await openStream(keyB, await session(keyB), streams.signal);
      t.diagnostic(
        `key A: ${first.status}, same session ${sameSession.status}, 2nd session ${second.status}, 3rd session ${third.status}; key B ${other.status}; GETs upstream ${upstreamGets() - before}`,
      );
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      assert.equal(other.status, 200, "another caller still opens a stream");
      assert.equal(sameSession.status, 429);
      assert.equal(sameSession.retryAfter, "1");
      assert.deepEqual(withoutDecisionId((sameSession.body as { error: unknown }).error), {
        code: -32014,
        message: "Too many requests: a per-caller limit was reached; retry later",
        data: { limit: "streams_per_session", retryAfterSeconds: 1 },
      });
      assert.equal(third.status, 429);
      assert.equal(
        (third.body as { error: { data: { limit: string } } }).error.data.limit,
        "streams_per_caller",
      );
      assert.equal(upstreamGets() - before, 3, "refused streams never reached the upstream");
      const text = await scrape(gw);
      assert.equal(sample(text, 'portcullis_limit_refusals_total{limit="streams_per_session"}'), 1);
      assert.equal(sample(text, 'portcullis_limit_refusals_total{limit="streams_per_caller"}'), 1);
      assert.equal(sample(text, "portcullis_open_streams"), 3);
      await auditRecordsUntil(
        gw,
        (r) => r.decision === "deny" && r.reason.includes("limits.streamsPerCaller"),
      );
    } finally {
      streams.abort();
    }
    // Closed streams give their slots back.
    const again = new AbortController();
    try {
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await openStream(keyA, await session(keyA), again.signal)).status;
        if (status !== 200) await sleep(100);
      }
      assert.equal(status, 200);
    } finally {
      again.abort();
    }
  });

  it("one caller's hung calls cannot take the upstream's whole connection pool from another caller", async (t) => {
    const hung = new AbortController();
    const slow = (id: number) => {
      const m = modern(id, "tools/call", { name: "slow", arguments: { ms: 55_000 } }, keyA);
      return rpc(gw.endpoint("up"), m.body, m.headers);
    };
    const slowCalls = () =>
      upstream.requests.filter((r) => (r.body as { params?: { name?: string } })?.params?.name === "slow")
        .length;
    try {
      const pending = [1, 2].map((id) => {
        const m = modern(id, "tools/call", { name: "slow", arguments: { ms: 55_000 } }, keyA);
        return fetch(gw.endpoint("up"), {
          method: "POST",
          headers: {
            ...m.headers,
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
          },
          body: JSON.stringify(m.body),
          signal: hung.signal,
        }).then(
          (r) => `settled ${r.status}`,
          () => "aborted",
        );
      });
      while (slowCalls() < 2) await sleep(50);
      const refused = await slow(3);
      const settledFirst: string[] = [];
      void Promise.all(pending).then((s) => settledFirst.push(...s));
      const echo = modern(4, "tools/call", { name: "echo", arguments: { text: "still served" } }, keyB);
      const neighbour = await rpc(gw.endpoint("up"), echo.body, echo.headers);
      t.diagnostic(
        `key A: 2 calls hung upstream, 3rd answered ${refused.status} (Retry-After ${refused.headers.get("retry-after")}); key B answered ${neighbour.status} while A's calls were ${settledFirst.length === 0 ? "still hung" : settledFirst.join(",")}`,
      );
      assert.equal(refused.status, 429, refused.text);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.equal(refused.json.id, 3);
      assert.equal((refused.json.error as { data: { limit: string } }).data.limit, "calls_in_flight");
      assert.equal(slowCalls(), 2, "the refused call never reached the upstream");
      assert.equal(neighbour.status, 200, neighbour.text);
      assert.deepEqual(
        settledFirst,
        [],
        "the other caller was served while the hung calls still held theirs",
      );
      assert.equal(sample(await scrape(gw), 'portcullis_limit_refusals_total{limit="calls_in_flight"}'), 1);
    } finally {
      hung.abort();
    }
    // Calls that end give their slots back.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      const m = modern(10 + i, "tools/call", { name: "echo", arguments: { text: "back" } }, keyA);
      status = (await rpc(gw.endpoint("up"), m.body, m.headers)).status;
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200);
  });

  it("a caller opening session after session ends only its own oldest session, never another caller's", async (t) => {
    const ping = async (key: string, sessionId: string) =>
      (
        await rpc(
          gw.endpoint("up"),
          { jsonrpc: "2.0", id: 9, method: "ping" },
          { authorization: `Bearer ${key}`, "mcp-session-id": sessionId, "mcp-protocol-version": LEGACY },
        )
      ).status;
    const neighbours = await session(keyB);
    const flood: string[] = [];
    for (let i = 0; i < 6; i++) flood.push(await session(keyA));
    // One at a time: the calls-in-flight cap is not what this test is about.
    const statuses: number[] = [];
    for (const id of flood) statuses.push(await ping(keyA, id));
    const neighbour = await ping(keyB, neighbours);
    t.diagnostic(
      `key A opened 6 sessions (cap 3): pings ${statuses.join(",")}; key B's session ${neighbour}`,
    );
    assert.deepEqual(
      statuses,
      [404, 404, 404, 200, 200, 200],
      "only the caller's three newest sessions live",
    );
    assert.equal(neighbour, 200, "another caller's session was not evicted");
  });
});
