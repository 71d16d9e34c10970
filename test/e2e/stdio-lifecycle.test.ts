/**
 * stdio upstream lifecycle: a crash fails the in-flight call with a clear error (never a
 * hang) and the child is restarted on the next call; idle children are reaped.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { withoutDecisionId } from "../helpers/mcp.js";

const CRASHING = resolve("dist/test/fixtures/crashing-server.js");

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("stdio upstream lifecycle", () => {
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        servers: {
          fragile: { transport: "stdio", command: process.execPath, args: [CRASHING], idleTimeoutSeconds: 2 },
          missing: { transport: "stdio", command: "/nonexistent/portcullis-missing-server" },
        },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "lifecycle"])).key as string;
  });
  after(() => gw.stop());

  async function pid(): Promise<number> {
    const call = modern(1, "tools/call", { name: "pid", arguments: {} }, key);
    const res = await rpc(gw.endpoint("fragile"), call.body, call.headers);
    assert.equal(res.status, 200, res.text);
    return Number(((res.json.result as { content: { text: string }[] }).content[0] as { text: string }).text);
  }

  it("fails the in-flight call with a clear JSON-RPC error when the child crashes, then restarts it", async () => {
    const first = await pid();
    const call = modern(2, "tools/call", { name: "crash", arguments: {} }, key);
    const res = await rpc(gw.endpoint("fragile"), call.body, call.headers);
    assert.equal(res.status, 502);
    assert.deepEqual(withoutDecisionId(res.json.error), {
      code: -32010,
      message: "Upstream server process exited",
    });
    assert.equal(res.json.id, 2);
    const second = await pid();
    assert.notEqual(second, first, "a new child serves the next call");
  });

  it("answers 502 (upstream unavailable, not timed out) when a stdio server cannot even start", async () => {
    const call = modern(3, "tools/list", {}, key);
    const res = await rpc(gw.endpoint("missing"), call.body, call.headers);
    assert.equal(res.status, 502);
    // -32010 (upstream unavailable), not -32011 (upstream timed out): refused, not waited out.
    assert.equal((res.json.error as { code: number }).code, -32010);
    assert.ok((await pid()) > 0, "other servers keep working");
  });

  it("reaps a child that has been idle longer than idleTimeoutSeconds", async () => {
    const child = await pid();
    assert.ok(alive(child));
    const deadline = Date.now() + 40_000;
    while (alive(child) && Date.now() < deadline) await sleep(250);
    assert.equal(alive(child), false, "idle child was stopped");
    assert.ok((await pid()) > 0, "and a new one starts on demand");
  });
});
