/**
 * The start checks of upstreams (src/forward/upstreamChecks.ts, HttpUpstream.check): a stdio
 * command that cannot be run is named with the fix; an HTTP upstream is down while nothing
 * answers at its URL and up once a real MCP server does.
 */
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pino from "pino";
import { type HttpServerConfig, UpstreamServer } from "../../src/config/schema.js";
import { HttpUpstream } from "../../src/forward/http.js";
import { SessionBindings } from "../../src/forward/sessions.js";
import { commandProblem } from "../../src/forward/upstreamChecks.js";
import { UpstreamHealth } from "../../src/telemetry/upstreamHealth.js";
import { startHttpUpstream } from "../fixtures/http-upstream.js";
import { cleanup, tempDir } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";

describe("upstream start checks", () => {
  const dir = tempDir("portcullis-checks-");
  after(() => cleanup(dir));

  it("accepts a command found on the child's PATH, and an executable path", () => {
    const nodeDir = join(process.execPath, "..");
    assert.equal(commandProblem("s", { command: "node" }, { PATH: nodeDir }), null);
    assert.equal(commandProblem("s", { command: process.execPath }, {}), null);
  });

  it("names a bare command missing from PATH, with the fix", () => {
    const problem = commandProblem("files", { command: "no-such-mcp-server" }, { PATH: dir });
    assert.match(
      String(problem),
      /^servers\.files\.command 'no-such-mcp-server' is not on PATH \(1 directories searched\)/,
    );
    assert.match(String(problem), /set command to its absolute path/);
  });

  it("names a command that exists but is not executable", () => {
    const script = join(dir, "server.sh");
    writeFileSync(script, "#!/bin/sh\n");
    chmodSync(script, 0o644);
    assert.match(String(commandProblem("s", { command: script }, {})), /cannot be run \(not executable/);
    assert.match(String(commandProblem("s", { command: "server.sh" }, { PATH: dir })), /chmod \+x/);
    assert.match(
      String(commandProblem("s", { command: "./nope/server" }, {})),
      /cannot be run \(no such file/,
    );
  });

  it("reports an HTTP upstream down while nothing answers, and up once it does", async () => {
    const port = await freePort();
    const health = new UpstreamHealth(["remote"], pino({ level: "silent" }), async (l) => [...l]);
    const config = UpstreamServer.parse({
      transport: "http",
      url: `http://127.0.0.1:${port}/mcp`,
    }) as HttpServerConfig;
    const upstream = new HttpUpstream("remote", config, {}, new SessionBindings(), health);
    try {
      await upstream.check();
      assert.equal(health.get("remote")?.state, "down");
      assert.match(
        String(health.get("remote")?.lastError),
        /does not answer .*start the server, or fix the URL/,
      );
      const server = await startHttpUpstream({ port });
      try {
        await upstream.check();
        assert.equal(health.get("remote")?.state, "up");
        assert.equal(
          server.requests.at(-1)?.body && (server.requests.at(-1)?.body as { method?: string }).method,
          "ping",
        );
      } finally {
        await server.close();
      }
    } finally {
      await upstream.close();
    }
  });

  it("probes only the servers that neither answered nor failed during the last period", async () => {
    const health = new UpstreamHealth(["busy", "failing", "idle"], pino({ level: "silent" }), async (l) => [
      ...l,
    ]);
    health.up("busy");
    await health.down("failing", "connection refused");
    assert.deepEqual([...health.idleSince()], ["idle"]);
    assert.deepEqual([...health.idleSince()].sort(), ["busy", "failing", "idle"], "a new period starts");
  });
});
