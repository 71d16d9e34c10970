/**
 * Client and upstream on different MCP revisions: the gateway bridges where it can (a
 * 2026-07-28 client on a 2025-11-25 stdio server, see sdk-clients.test.ts) and says so
 * where it cannot (a 2026-07-28 client on a legacy-only HTTP server), in a form that lets a
 * negotiating client fall back to the initialize handshake.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { EVERYTHING_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";

describe("revision bridging with a legacy-only HTTP upstream", () => {
  let gw: RunningGateway;
  let legacy: ChildProcess;
  let key: string;

  before(async () => {
    const port = await freePort();
    legacy = spawn(process.execPath, [EVERYTHING_SERVER, "streamableHttp"], {
      env: { ...process.env, PORT: String(port) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      legacy.stderr?.on("data", (d: Buffer) => {
        if (d.toString().includes("listening")) resolve();
      });
      legacy.on("exit", (code) => reject(new Error(`server-everything exited ${code}`)));
    });
    gw = await startGateway({
      config: {
        environment: "test",
        servers: { legacy: { transport: "http", url: `http://127.0.0.1:${port}/mcp` } },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "bridging"])).key as string;
  });
  after(async () => {
    await gw.stop();
    legacy.kill();
  });

  it("answers a 2026-07-28 request with UnsupportedProtocolVersion (-32022) naming the revisions that work", async () => {
    const call = modern(1, "tools/list", {}, key);
    const res = await rpc(gw.endpoint("legacy"), call.body, call.headers);
    assert.equal(res.status, 400);
    const error = res.json.error as { code: number; message: string; data: { supported: string[] } };
    assert.equal(error.code, -32022);
    assert.match(error.message, /speaks only 2025-x/);
    assert.deepEqual(error.data.supported, ["2025-11-25", "2025-06-18"]);
  });

  it("lets a negotiating v2 client fall back to 2025-11-25 and call tools", async () => {
    const client = new ClientV2({ name: "auto", version: "1" }, { versionNegotiation: { mode: "auto" } });
    await client.connect(
      new TransportV2(new URL(gw.endpoint("legacy")), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), "2025-11-25");
      const result = await client.callTool({ name: "echo", arguments: { message: "fallback" } });
      assert.match(JSON.stringify(result), /fallback/);
    } finally {
      await client.close();
    }
  });
});
