/**
 * A gateway whose startup fails after it bound its port and opened its store (here: the
 * built-in authorization server refuses an http issuer outside dev) stops everything it had
 * started, in reverse: the port is free again, and the operator who fixes the config starts
 * the gateway again on the same port and data directory, in the same process.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pino } from "pino";
import { stringify } from "yaml";
import { ConfigError, loadConfig } from "../../src/config/load.js";
import { startGateway } from "../../src/gateway.js";
import { ALLOW_ALL_POLICY, DEMO_SERVER, tempDir } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";

describe("a startup that fails half-way", () => {
  it("stops what had started: the port is free again, and a corrected start on it advertises its issuer from the first request", async () => {
    const dir = tempDir();
    const port = await freePort();
    const file = join(dir, "portcullis.yaml");
    writeFileSync(
      file,
      stringify({
        dataDir: join(dir, "data"),
        environment: "prod",
        listen: { host: "127.0.0.1", port },
        oauth: { mode: "builtin" },
        console: { enabled: false },
        policy: { paths: [ALLOW_ALL_POLICY] },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      }),
    );
    await assert.rejects(startGateway(loadConfig({ config: file }), pino({ level: "silent" })), (err) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /https outside the dev environment/);
      return true;
    });
    // The port the gateway had bound can be bound again.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(port, "127.0.0.1", resolve);
    });
    await new Promise((resolve) => probe.close(resolve));
    // The operator fixes the config and starts again, on the same port and data directory.
    writeFileSync(file, readFileSync(file, "utf8").replace("environment: prod", "environment: dev"));
    const gateway = await startGateway(loadConfig({ config: file }), pino({ level: "silent" }));
    try {
      assert.equal(gateway.port, port);
      // The very first requests the listener answers already carry the complete OAuth side.
      const prm = await fetch(`${gateway.url}/.well-known/oauth-protected-resource/mcp/demo`);
      assert.equal(prm.status, 200);
      assert.deepEqual(((await prm.json()) as { authorization_servers: string[] }).authorization_servers, [
        gateway.url,
      ]);
      const as = await fetch(`${gateway.url}/.well-known/oauth-authorization-server`);
      assert.equal(as.status, 200);
      assert.equal(((await as.json()) as { issuer: string }).issuer, gateway.url);
    } finally {
      await gateway.close();
    }
  });
});
