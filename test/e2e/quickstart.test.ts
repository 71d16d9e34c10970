/**
 * The README's first command: `portcullis start` with no config serves the bundled demo
 * server, prints the key once with client configuration, and the key works with curl.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { CLI, cleanup, modern, rpc, tempDir } from "../helpers/gateway.js";

interface Started {
  url: string;
  banner: string;
  stop(): Promise<void>;
}

async function start(dir: string): Promise<Started> {
  const proc = spawn(process.execPath, [CLI, "start", "--port", "0"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let banner = "";
  proc.stderr.on("data", (d) => {
    banner += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === "portcullis listening") resolve(entry.url as string);
    });
    proc.on("exit", (code) => reject(new Error(`exited ${code}: ${banner}`)));
  });
  // The banner follows the listening line.
  for (let i = 0; i < 50 && !banner.includes("Claude Desktop"); i++)
    await new Promise((r) => setTimeout(r, 50));
  return {
    url,
    banner,
    stop: async () => {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGINT");
      await exited;
    },
  };
}

describe("quick start: `portcullis start` on the embedded default", () => {
  const dir = tempDir();
  after(() => cleanup(dir));

  it("serves the demo server with a key printed once, and client configuration", async () => {
    const first = await start(dir);
    let key: string;
    try {
      const match = /^ {2}(pcl_dev_\S+)$/m.exec(first.banner);
      assert.ok(match, first.banner);
      key = match[1] as string;
      for (const client of ["Claude Code", "Claude Desktop", "Cursor", "VS Code"])
        assert.ok(first.banner.includes(client), client);
      // mcp-remote's header argument holds no space (it breaks on Windows): the value is in env.
      const desktop = JSON.parse(
        /Claude Desktop[^\n]*\n([\s\S]*?\n {2}\})\n/.exec(first.banner)?.[1] ?? "null",
      ) as { mcpServers: { demo: { args: string[]; env: Record<string, string> } } };
      assert.deepEqual(desktop.mcpServers.demo.args.slice(-2), ["--header", `Authorization:$\{AUTH_HEADER}`]);
      assert.ok(desktop.mcpServers.demo.args.every((a) => !a.includes(" ")));
      assert.deepEqual(desktop.mcpServers.demo.env, { AUTH_HEADER: `Bearer ${key}` });
      // The printed commands name this data directory, so they work from any directory.
      assert.ok(first.banner.includes(` keys list --no-config --data-dir ${dir}/.portcullis`), first.banner);
      const call = modern(1, "tools/list", {}, key);
      const res = await rpc(`${first.url}/mcp/demo`, call.body, call.headers);
      assert.equal(res.status, 200);
      const result = res.json.result as { tools: { name: string; annotations: Record<string, boolean> }[] };
      // The default policy pack is on: an API key sees (and may call) only read-tier tools.
      assert.ok(result.tools.length > 0);
      assert.ok(
        result.tools.every((t) => t.annotations.readOnlyHint === true),
        JSON.stringify(result.tools),
      );
      assert.equal((result as { cacheScope?: string }).cacheScope, "private");
      const write = modern(3, "tools/call", { name: "add_note", arguments: { title: "t", body: "b" } }, key);
      const refusedWrite = await rpc(`${first.url}/mcp/demo`, write.body, write.headers);
      assert.equal(refusedWrite.status, 200, "a policy refusal is the request's JSON-RPC error");
      assert.equal((refusedWrite.json.error as { code: number }).code, -32040);
      const anon = modern(2, "tools/list");
      const refused = await rpc(`${first.url}/mcp/demo`, anon.body, anon.headers);
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get("www-authenticate") ?? "", /^Bearer/);
    } finally {
      await first.stop();
    }
    const second = await start(dir);
    try {
      assert.ok(!second.banner.includes("pcl_dev_"), "the key is shown only on the first run");
      const call = modern(3, "tools/list", {}, key);
      assert.equal(
        (await rpc(`${second.url}/mcp/demo`, call.body, call.headers)).status,
        200,
        "and keeps working",
      );
    } finally {
      await second.stop();
    }
  });
});
