/**
 * `portcullis keys create|list|show|revoke|rotate --json` on SQLite and on PostgreSQL, and
 * revocation reaching a running gateway on the next request on both.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
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
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";

interface Backend {
  /** Extra CLI/start flags selecting the store, e.g. ["--store", url]. */
  flags: string[];
  done(): Promise<void>;
}

function keysSuite(name: string, backend: () => Promise<Backend>): void {
  describe(`keys CLI on ${name}`, () => {
    let b: Backend;
    let dir: string;
    let gw: RunningGateway;

    before(async () => {
      b = await backend();
      dir = tempDir();
      gw = await startGateway({
        dir,
        config: {
          environment: "test",
          servers: {
            demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
            // Never listed in these tests: its tools stay unknown.
            notes: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
          },
        },
        flags: b.flags,
      });
    });
    after(async () => {
      await gw.stop();
      cleanup(dir);
      await b.done();
    });

    const cli = async (args: string[]) => {
      const r = await runCli([...args, "--config", gw.configFile, ...b.flags, "--json"]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, unknown> & Record<string, unknown>[];
    };
    const listTools = async (key: string) => {
      const call = modern(1, "tools/list", {}, key);
      return (await rpc(gw.endpoint("demo"), call.body, call.headers)).status;
    };

    it("create prints the id and the key once; list and show never print it", async () => {
      const created = await cli([
        "keys",
        "create",
        "--name",
        "ci-sync",
        "--servers",
        "demo",
        "--expires",
        "7d",
      ]);
      assert.match(created.key as string, /^pcl_test_/);
      assert.equal(created.name, "ci-sync");
      assert.deepEqual(created.scopes, ["demo"]);
      const days = (Date.parse(created.expiresAt as string) - Date.now()) / 86_400_000;
      assert.ok(days > 6.9 && days <= 7, String(days));
      const list = (await cli(["keys", "list"])) as unknown as Record<string, unknown>[];
      const row = list.find((k) => k.id === created.id);
      assert.ok(row);
      assert.equal(row.key, undefined);
      assert.ok(!JSON.stringify(list).includes(created.key as string));
      const shown = await cli(["keys", "show", created.id as string]);
      assert.equal(shown.status, "active");
      assert.equal(shown.key, undefined);
      assert.equal(shown.hash, undefined);
      assert.equal(await listTools(created.key as string), 200);
    });

    it("revoke refuses the key on the next request and hides it from list unless --all", async () => {
      const created = await cli(["keys", "create", "--name", "to-revoke"]);
      assert.equal(await listTools(created.key as string), 200);
      const revoked = await cli(["keys", "revoke", created.id as string]);
      assert.equal(revoked.status, "revoked");
      assert.equal(await listTools(created.key as string), 401);
      const active = (await cli(["keys", "list"])) as unknown as Record<string, unknown>[];
      assert.ok(!active.some((k) => k.id === created.id));
      const all = (await cli(["keys", "list", "--all"])) as unknown as Record<string, unknown>[];
      assert.equal(all.find((k) => k.id === created.id)?.status, "revoked");
    });

    it("rotate issues a successor and ends the old key after the overlap", async () => {
      const created = await cli(["keys", "create", "--name", "rotating"]);
      const rotated = await cli(["keys", "rotate", created.id as string, "--overlap", "0"]);
      assert.equal(rotated.rotatedFrom, created.id);
      assert.equal((rotated.previous as { id: string }).id, created.id);
      assert.equal(await listTools(rotated.key as string), 200);
      assert.equal(await listTools(created.key as string), 401);
    });

    it("rotate keeps the old key's expiry (it never silently extends the lifetime) unless --expires is given", async () => {
      const created = await cli(["keys", "create", "--name", "short-lived", "--expires", "2d"]);
      const rotated = await cli(["keys", "rotate", created.id as string]);
      assert.equal(rotated.expiresAt, created.expiresAt, "the successor expires when the old key would have");
      assert.equal(rotated.expiryKept, true);
      const human = await runCli([
        "keys",
        "rotate",
        rotated.id as string,
        "--config",
        gw.configFile,
        ...b.flags,
      ]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(
        human.stdout,
        new RegExp(`new key expires at ${created.expiresAt} \\(same as the old key\\)`),
      );
      const successor = ((await cli(["keys", "list"])) as unknown as Record<string, unknown>[]).find(
        (k) => k.rotatedFrom === rotated.id,
      );
      assert.equal(successor?.expiresAt, created.expiresAt);
      const longer = await cli(["keys", "rotate", successor?.id as string, "--expires", "10d"]);
      assert.equal(longer.expiryKept, false);
      const days = (Date.parse(longer.expiresAt as string) - Date.now()) / 86_400_000;
      assert.ok(days > 9.9 && days <= 10, String(days));
    });

    const create = (name: string, servers: string) =>
      runCli(["keys", "create", "--name", name, "--servers", servers, "--config", gw.configFile, ...b.flags]);
    const keyNames = async () =>
      ((await cli(["keys", "list"])) as unknown as Record<string, unknown>[]).map((k) => k.name);

    it("refuses a misspelt server with exit code 2, naming the configured servers and the closest one, and creates no key", async () => {
      const r = await create("typo-server", "dmeo");
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /--servers 'dmeo': no server named 'dmeo' is configured \(did you mean 'demo'\?\); configured servers: demo, notes/,
      );
      assert.ok(!(await keyNames()).includes("typo-server"), "no key was created");
      const json = await runCli([
        "keys",
        "create",
        "--name",
        "typo-server",
        "--servers",
        "demo:get_time,githib",
        "--config",
        gw.configFile,
        ...b.flags,
        "--json",
      ]);
      assert.equal(json.code, 2);
      assert.equal((JSON.parse(json.stdout) as { error: string }).error, "usage");
      assert.ok(!(await keyNames()).includes("typo-server"), "no key was created");
    });

    it("refuses a misspelt tool of a server whose tools are known, and accepts the right spelling", async () => {
      const { key } = await cli(["keys", "create", "--name", "lister", "--servers", "demo"]);
      assert.equal(await listTools(key as string), 200);
      // The tools/list is pinned off the request path: wait until the store knows the tools.
      await waitFor("the demo server's tools in the store", async () => {
        const tools = (await cli(["tools", "list", "--server", "demo"])) as unknown as { tool: string }[];
        return tools.some((t) => t.tool === "get_time");
      });
      const r = await create("typo-tool", "demo:get_tme");
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /--servers 'demo:get_tme': server demo has no tool 'get_tme' \(did you mean 'get_time'\?\); its tools: .*get_time/,
      );
      assert.ok(!(await keyNames()).includes("typo-tool"), "no key was created");
      const ok = await cli([
        "keys",
        "create",
        "--name",
        "typo-tool",
        "--servers",
        "demo:get_time,demo:search_*",
      ]);
      assert.deepEqual(ok.scopes, ["demo:get_time", "demo:search_*"]);
      assert.equal(ok.warnings, undefined);
    });

    it("creates a key for tools of a server not listed yet, with a warning that they are unchecked", async () => {
      const r = await create("early", "notes:search_notes");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: 'notes:search_notes': the tools of notes are not known yet/);
      assert.ok((await keyNames()).includes("early"));
    });

    it("answers unknown ids and bad flags with exit code 2 and a message naming the problem", async () => {
      let r = await runCli(["keys", "show", "doesnotexist", "--config", gw.configFile, ...b.flags, "--json"]);
      assert.equal(r.code, 2);
      assert.deepEqual(JSON.parse(r.stdout), { error: "usage", message: "no key with id doesnotexist" });
      r = await runCli([
        "keys",
        "create",
        "--name",
        "x",
        "--servers",
        "Demo!",
        "--config",
        gw.configFile,
        ...b.flags,
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--servers: 'Demo!' is not a scope/);
      r = await runCli([
        "keys",
        "create",
        "--name",
        "x",
        "--expires",
        "soon",
        "--config",
        gw.configFile,
        ...b.flags,
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--expires 'soon'/);
    });
  });
}

keysSuite("SQLite", async () => ({ flags: [], done: async () => {} }));

describe("on PostgreSQL", { skip: await postgresSkip() }, () => {
  let db: TestDatabase;
  keysSuite("PostgreSQL", async () => {
    db = await createTestDatabase();
    return { flags: ["--store", db.url], done: () => db.drop() };
  });
});
