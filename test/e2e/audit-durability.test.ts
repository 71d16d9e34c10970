/**
 * Durability of the audit trail under a crash: write-tier calls are durably recorded before
 * they are forwarded. Several clients send write-tier calls in a loop through a real gateway
 * to a stdio server that logs every call it receives; the gateway is killed with SIGKILL
 * mid-load; then every call the upstream received must have its audit record (with its
 * arguments), and the chain must still verify.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { openStore } from "../../src/store/open.js";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import { cleanup, modern, rpc, runCli, startGateway, tempDir } from "../helpers/gateway.js";

const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const TOOLS: ToolFile = {
  tools: [
    {
      name: "write_note",
      description: "Writes a note.",
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
  ],
};

describe("audit durability", () => {
  it("every write-tier call the upstream received has its audit record after SIGKILL", async () => {
    const dir = tempDir("portcullis-audit-durability-");
    const toolsFile = join(dir, "tools.json");
    const callsFile = join(dir, "calls.jsonl");
    writeFileSync(toolsFile, JSON.stringify(TOOLS));
    writeFileSync(callsFile, "");
    const gw = await startGateway({
      dir,
      config: {
        servers: {
          notes: {
            transport: "stdio",
            command: process.execPath,
            args: [MUTABLE_SERVER, toolsFile, "--calls", callsFile],
          },
        },
      },
    });
    try {
      const key = (await gw.cli(["keys", "create", "--name", "agent"])).key as string;
      const list = modern(0, "tools/list", {}, key);
      assert.equal((await rpc(gw.endpoint("notes"), list.body, list.headers)).status, 200);

      let stop = false;
      const client = async (c: number) => {
        for (let n = 0; !stop; n++) {
          const { body, headers } = modern(
            n + 1,
            "tools/call",
            { name: "write_note", arguments: { tag: `c${c}-${n}` } },
            key,
          );
          try {
            await rpc(gw.endpoint("notes"), body, headers);
          } catch {
            return; // the gateway is gone
          }
        }
      };
      const clients = [0, 1, 2, 3].map(client);
      // Kill once the upstream has received a good number of calls.
      for (let i = 0; i < 200; i++) {
        if (readFileSync(callsFile, "utf8").split("\n").length > 150) break;
        await sleep(20);
      }
      gw.proc.kill("SIGKILL");
      stop = true;
      await Promise.all(clients);
      await new Promise((r) =>
        gw.proc.exitCode === null && gw.proc.signalCode === null ? gw.proc.once("exit", r) : r(null),
      );
      await sleep(200); // the upstream child may still log a call the dead gateway had forwarded

      const received = readFileSync(callsFile, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { arguments: { tag: string } }).arguments.tag);
      assert.ok(received.length > 50, `load reached the upstream (${received.length} calls)`);

      const store = await openStore(join(dir, "data", "portcullis.db"));
      let audited: Set<string>;
      try {
        const records = await store.searchAudit({ tool: "write_note", limit: 100_000 });
        audited = new Set(
          records
            .filter((r) => r.decision === "allow")
            .map((r) => (r.arguments as { tag?: string } | null | undefined)?.tag)
            .filter((t): t is string => t !== undefined),
        );
      } finally {
        await store.close();
      }
      const missing = received.filter((t) => !audited.has(t));
      assert.deepEqual(
        missing,
        [],
        `${missing.length} of ${received.length} forwarded calls have no audit record`,
      );

      const verify = await runCli(["audit", "verify", "--json", "--config", gw.configFile]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.equal((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
    } finally {
      if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill("SIGKILL");
      cleanup(dir);
    }
  });
});
