/**
 * Bad input never crashes the gateway, hangs, or hides a 400 behind a 500: each case gets
 * its spec-shaped status and JSON-RPC error, and the gateway keeps serving.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type HttpUpstream, SLOW_MAX_MS, startHttpUpstream } from "../fixtures/http-upstream.js";
import {
  cleanup,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";

describe("bad input", () => {
  let gw: RunningGateway;
  let upstream: HttpUpstream;
  let key: string;
  let auth: Record<string, string>;

  before(async () => {
    upstream = await startHttpUpstream();
    gw = await startGateway({
      config: {
        environment: "test",
        limits: { bodyBytes: 4096, requestTimeoutMs: 1500 },
        servers: {
          demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
          remote: { transport: "http", url: upstream.url, timeoutMs: 800 },
          down: { transport: "http", url: "http://127.0.0.1:9/mcp", connectTimeoutMs: 500 },
        },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "bad-input"])).key as string;
    auth = { authorization: `Bearer ${key}` };
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  it("answers malformed JSON with 400 and JSON-RPC -32700", async () => {
    const res = await rpc(gw.endpoint("demo"), '{"jsonrpc":"2.0",', auth);
    assert.equal(res.status, 400);
    assert.equal((res.json.error as { code: number }).code, -32700);
  });

  it("answers an invalid JSON-RPC request with 400 and -32600, echoing the id", async () => {
    const res = await rpc(gw.endpoint("demo"), { jsonrpc: "1.0", id: 42, method: "tools/list" }, auth);
    assert.equal(res.status, 400);
    assert.equal((res.json.error as { code: number }).code, -32600);
    assert.equal(res.json.id, 42);
  });

  it("refuses a JSON-RPC batch (removed from MCP in 2025-06-18) with -32600", async () => {
    const res = await rpc(gw.endpoint("demo"), [{ jsonrpc: "2.0", id: 1, method: "tools/list" }], auth);
    assert.equal(res.status, 400);
    assert.equal((res.json.error as { code: number }).code, -32600);
  });

  it("refuses a body over the configured limit with 413", async () => {
    const big = modern(1, "tools/call", { name: "echo", arguments: { text: "x".repeat(10_000) } }, key);
    const res = await rpc(gw.endpoint("demo"), big.body, big.headers);
    assert.equal(res.status, 413);
    assert.equal((res.json.error as { code: number }).code, -32013);
  });

  it("refuses a non-JSON content type with 415", async () => {
    const res = await fetch(gw.endpoint("demo"), {
      method: "POST",
      headers: { ...auth, "content-type": "text/plain" },
      body: "hi",
    });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32600);
  });

  it("answers an unknown server with 404 (only after authentication)", async () => {
    const call = modern(2, "tools/list", {}, key);
    const res = await rpc(`${gw.url}/mcp/nope`, call.body, call.headers);
    assert.equal(res.status, 404);
    assert.equal((res.json.error as { code: number }).code, -32601);
    const anon = modern(3, "tools/list");
    assert.equal((await rpc(`${gw.url}/mcp/nope`, anon.body, anon.headers)).status, 401);
  });

  it("answers 502 with a JSON-RPC error when the upstream is down, and keeps serving others", async () => {
    const call = modern(4, "tools/list", {}, key);
    const res = await rpc(gw.endpoint("down"), call.body, call.headers);
    assert.equal(res.status, 502);
    assert.equal((res.json.error as { code: number }).code, -32010);
    assert.equal(res.json.id, 4);
    const ok = await rpc(gw.endpoint("remote"), call.body, call.headers);
    assert.equal(ok.status, 200, ok.text);
  });

  it("answers 504 when the upstream does not answer in time", { timeout: SLOW_MAX_MS / 2 }, async () => {
    // The upstream sleeps longer than this test may run: a 504 at all means the gateway gave up
    // at its own limit while the upstream was still working, not at the upstream's pace.
    const call = modern(5, "tools/call", { name: "slow", arguments: { ms: SLOW_MAX_MS } }, key);
    const res = await rpc(gw.endpoint("remote"), call.body, call.headers);
    assert.equal(res.status, 504);
    assert.equal((res.json.error as { code: number }).code, -32011);
    assert.ok(
      upstream.requests.some((r) => (r.body as { params?: { name?: string } })?.params?.name === "slow"),
      "the call reached the upstream",
    );
  });

  it("times out a client that stalls mid-request (408) instead of holding the connection", async () => {
    const { port } = new URL(gw.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write(
          `POST /mcp/demo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc"`,
        );
      });
      let data = "";
      socket.on("data", (d) => {
        data += d.toString();
      });
      socket.on("close", () => resolve(data));
      socket.on("error", reject);
      setTimeout(() => reject(new Error("connection was never closed")), 10_000).unref();
    });
    assert.match(reply, /^HTTP\/1.1 408/);
  });

  it("refuses a 2026-07-28 request whose Mcp-Method header disagrees with the body (-32020)", async () => {
    const call = modern(6, "tools/call", { name: "echo", arguments: { text: "x" } }, key);
    const res = await rpc(gw.endpoint("remote"), call.body, { ...call.headers, "mcp-method": "tools/list" });
    assert.equal(res.status, 400);
    assert.equal((res.json.error as { code: number }).code, -32020);
  });

  it("refuses to start with a bad config, naming the field and the fix", async () => {
    const dir = tempDir();
    try {
      const file = join(dir, "bad.yaml");
      writeFileSync(
        file,
        "environment: prod\nservers:\n  open:\n    transport: http\n    url: http://127.0.0.1:1/mcp\n    anonymous: true\n",
      );
      let r = await runCli(["start", "--config", file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /servers\.open\.anonymous: anonymous access is refused in the prod environment/);
      writeFileSync(file, "servers:\n  x:\n    transport: ftp\n    port: 1\nlisten: { prot: 1 }\n");
      r = await runCli(["start", "--config", file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /servers\.x\.transport/);
      assert.match(r.stderr, /listen: unknown key\(s\) 'prot'/);
      writeFileSync(
        file,
        "servers:\n  s:\n    transport: http\n    url: http://127.0.0.1:1/mcp\n    headers: { Authorization: { env: PORTCULLIS_TEST_UNSET_VAR } }\n",
      );
      r = await runCli(["start", "--config", file, "--data-dir", join(dir, "d")]);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /servers\.s\.headers\.Authorization: environment variable PORTCULLIS_TEST_UNSET_VAR is not set/,
      );
    } finally {
      cleanup(dir);
    }
  });

  it("refuses a DNS-rebinding attempt: a foreign Host or Origin gets 403 before authentication", async () => {
    const { port } = new URL(gw.url);
    const withKey = modern(8, "tools/list", {}, key);
    const withoutKey = modern(8, "tools/list");
    const raw = (host: string, origin?: string, call = withKey) =>
      new Promise<string>((resolve, reject) => {
        const body = JSON.stringify(call.body);
        const socket = connect(Number(port), "127.0.0.1", () => {
          const headers = Object.entries({
            ...call.headers,
            "content-type": "application/json",
            host,
            ...(origin ? { origin } : {}),
          })
            .map(([k, v]) => `${k}: ${v}`)
            .join("\r\n");
          socket.write(
            `POST /mcp/demo HTTP/1.1\r\n${headers}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
          );
        });
        let data = "";
        socket.on("data", (d) => {
          data += d.toString();
        });
        socket.on("close", () => resolve(data));
        socket.on("error", reject);
      });
    // Without any credential: refused as foreign (403), not as unauthenticated (401), so the
    // Host and Origin check runs before authentication.
    assert.match(await raw("evil.example.com", undefined, withoutKey), /^HTTP\/1.1 403/);
    assert.match(await raw(`127.0.0.1:${port}`, "http://evil.example.com", withoutKey), /^HTTP\/1.1 403/);
    // A valid key does not get a foreign Host or Origin through either.
    assert.match(await raw("evil.example.com"), /^HTTP\/1.1 403/);
    assert.match(await raw(`127.0.0.1:${port}`, "http://evil.example.com"), /^HTTP\/1.1 403/);
    // Controls: with the gateway's own Host, no credential is a 401 and the key is served.
    assert.match(await raw(`localhost:${port}`, undefined, withoutKey), /^HTTP\/1.1 401/);
    assert.match(await raw(`localhost:${port}`), /^HTTP\/1.1 200/);
  });

  it("is still up after all of the above", async () => {
    const res = await fetch(`${gw.url}/healthz`);
    assert.equal(res.status, 200);
  });
});
