/**
 * `portcullis init`: from a Claude Desktop, Cursor or VS Code config to a running gateway.
 * The written portcullis.yaml loads, is commented, holds the imported servers and none of
 * their secrets in clear; the admin it creates signs in to the console; `portcullis start`
 * serves the imported server; a second init refuses to overwrite.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { signInToConsole } from "../helpers/consoleSession.js";
import {
  CLI,
  cleanup,
  createKey,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGatewayWithConfigFile,
  tempDir,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const SECRET = "sk-live-4f9c2a7e1b8d6f30a5c9e2b7d4f1a8c3";

/** The CLI with answers on standard input (not a TTY), as a script or a pipe gives them. */
function runWithInput(args: string[], input: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? 1 };
}

/** Every setting line of the file has a comment above it (directly or above its block). */
function uncommentedKeys(text: string): string[] {
  const lines = text.split("\n");
  const missing: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    // Top-level keys and the keys of each server (indent 4) are the options init chose.
    if (!/^(\S| {4}\S)/.test(line) || line.trimStart().startsWith("#")) continue;
    const indent = line.length - line.trimStart().length;
    let j = i - 1;
    // Look back within the block: a comment at the same indent, before any sibling without one.
    while (
      j >= 0 &&
      (lines[j] as string).trim() !== "" &&
      !(lines[j] as string).trimStart().startsWith("#")
    ) {
      const prev = lines[j] as string;
      if (prev.length - prev.trimStart().length < indent) break;
      j--;
    }
    if (j < 0 || !(lines[j] as string).trimStart().startsWith("#")) missing.push(line);
  }
  return missing;
}

describe("portcullis init", () => {
  let dir: string;
  let fixture: string;
  let file: string;
  let port: number;
  let init: Record<string, unknown>;
  let gw: RunningGateway | undefined;

  before(async () => {
    dir = tempDir("portcullis-init-");
    fixture = join(dir, "claude_desktop_config.json");
    writeFileSync(
      fixture,
      JSON.stringify({
        mcpServers: {
          "Local Tools": {
            command: process.execPath,
            args: [DEMO_SERVER],
            env: { DEMO_API_KEY: SECRET, LOG_LEVEL: "debug" },
          },
        },
      }),
    );
    file = join(dir, "portcullis.yaml");
    port = await freePort();
  });
  after(async () => {
    await gw?.stop();
    cleanup(dir);
  });

  it("init --yes --import writes a commented config that loads, with the server and no secret in clear", async () => {
    const r = await runCli([
      "init",
      "--yes",
      "--import",
      fixture,
      "--dir",
      dir,
      "--port",
      String(port),
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    init = JSON.parse(r.stdout) as Record<string, unknown>;
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(SECRET), "the secret is not in the config");
    assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), "nor printed");
    assert.deepEqual(uncommentedKeys(text), []);

    const { config } = loadConfig({ config: file });
    const server = config.servers["local-tools"];
    assert.ok(server?.transport === "stdio", text);
    assert.equal(server.command, process.execPath);
    assert.deepEqual(server.args, [DEMO_SERVER]);
    assert.deepEqual(server.env, { DEMO_API_KEY: { env: "DEMO_API_KEY" }, LOG_LEVEL: "debug" });
    assert.equal(config.listen.port, port);
    assert.equal(config.oauth?.mode, "builtin");

    assert.deepEqual(init.variables, [
      { variable: "DEMO_API_KEY", field: "servers.local-tools.env.DEMO_API_KEY" },
    ]);
    const admin = init.admin as { username: string; password: string; created: boolean };
    assert.equal(admin.username, "admin");
    assert.equal(admin.created, true);
    assert.match(admin.password, /^[A-Za-z0-9_-]{20,}$/);
    assert.equal(statSync(join(dir, ".portcullis", "server-secret")).mode & 0o077, 0);

    const users = await runCli(["users", "list", "--config", file, "--json"]);
    assert.equal(users.code, 0, users.stderr);
    const list = JSON.parse(users.stdout) as Array<{ username: string; groups: string[] }>;
    assert.deepEqual(
      list.map((u) => [u.username, u.groups]),
      [["admin", ["admins"]]],
    );
  });

  it("portcullis start --config serves the imported server, and the admin signs in to the console", async () => {
    gw = await startGatewayWithConfigFile(file, { env: { DEMO_API_KEY: SECRET } });
    assert.equal(gw.url, `http://127.0.0.1:${port}`);
    const { key } = await createKey(gw, "agent");
    const call = modern(1, "tools/list", {}, key);
    const res = await rpc(gw.endpoint("local-tools"), call.body, call.headers);
    assert.equal(res.status, 200, res.text);
    assert.ok((res.json.result as { tools: unknown[] }).tools.length > 0, res.text);

    const admin = init.admin as { username: string; password: string };
    const console = await signInToConsole(gw, admin);
    const page = await console.get("/console");
    assert.equal(page.status, 200);
    assert.ok(page.html.includes("admin"), page.html.slice(0, 500));
  });

  it("a second init without --force refuses with exit 2 and leaves the config as it was", async () => {
    const before = readFileSync(file, "utf8");
    const r = await runCli(["init", "--yes", "--dir", dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /already exists; run with --force/);
    assert.equal(readFileSync(file, "utf8"), before);
  });

  it("init --force rewrites the config and keeps the existing admin's password", async () => {
    const r = await runCli(["init", "--yes", "--force", "--dir", dir, "--port", String(port), "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      admin: { password: string | null; created: boolean };
      servers: unknown[];
    };
    assert.deepEqual(out.admin, { username: "admin", password: null, created: false });
    // Nothing imported this time: the bundled demo server stands in.
    assert.deepEqual(Object.keys(loadConfig({ config: file }).config.servers), ["demo"]);
  });
});

describe("portcullis init: other sources and interactive answers", () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) cleanup(d);
  });
  const fresh = () => {
    const d = tempDir("portcullis-init-");
    dirs.push(d);
    return d;
  };

  it("--import auto finds Cursor's and VS Code's configs; http servers become upstreams whose headers come from the environment", async () => {
    const home = fresh();
    const dir = fresh();
    mkdirSync(join(home, ".cursor"));
    writeFileSync(
      join(home, ".cursor", "mcp.json"),
      JSON.stringify({
        mcpServers: {
          search: { url: "https://mcp.example.com/mcp", headers: { Authorization: `Bearer ${SECRET}` } },
        },
      }),
    );
    // A well-known file that is not JSON is skipped with a note, not fatal.
    mkdirSync(join(dir, ".cursor"));
    writeFileSync(join(dir, ".cursor", "mcp.json"), "{ not json");
    mkdirSync(join(dir, ".vscode"));
    writeFileSync(
      join(dir, ".vscode", "mcp.json"),
      `{
  // VS Code allows comments and trailing commas
  "inputs": [{ "type": "promptString", "id": "files-token", "password": true }],
  "servers": {
    "files": { "type": "stdio", "command": ${JSON.stringify(process.execPath)}, "args": [${JSON.stringify(DEMO_SERVER)}],
               "env": { "FILES_TOKEN": "\${input:files-token}", "HOME_DIR": "\${env:HOME}", "MODE": "ro", }, },
    "legacy": { "type": "sse", "url": "http://127.0.0.1:1/sse" },
  },
}`,
    );
    const r = await runCli(["init", "--yes", "--import", "auto", "--dir", dir, "--json"], { HOME: home });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { variables: Array<{ variable: string }>; notes: string[] };
    const text = readFileSync(join(dir, "portcullis.yaml"), "utf8");
    assert.ok(!text.includes(SECRET));
    const { config } = loadConfig({ config: join(dir, "portcullis.yaml") });
    assert.deepEqual(Object.keys(config.servers).sort(), ["files", "search"]);
    const search = config.servers.search;
    assert.ok(search?.transport === "http");
    assert.equal(search.url, "https://mcp.example.com/mcp");
    assert.deepEqual(search.headers, { Authorization: { env: "SEARCH_AUTHORIZATION" } });
    const files = config.servers.files;
    assert.ok(files?.transport === "stdio");
    assert.deepEqual(files.env, {
      FILES_TOKEN: { env: "FILES_TOKEN" },
      HOME_DIR: { env: "HOME" },
      MODE: "ro",
    });
    assert.deepEqual(out.variables.map((v) => v.variable).sort(), ["FILES_TOKEN", "SEARCH_AUTHORIZATION"]);
    assert.ok(
      out.notes.some((n) => n.includes("'legacy'") && n.includes("SSE")),
      out.notes.join("\n"),
    );
    const broken = join(dir, ".cursor", "mcp.json");
    assert.ok(
      out.notes.some((n) => n.includes(broken) && n.endsWith("skipped")),
      out.notes.join("\n"),
    );
  });

  it("without --yes it asks on standard input: servers, environment, port, store, admin", async () => {
    const home = fresh();
    const dir = fresh();
    const answers = [
      "tools", // server name
      `${process.execPath} ${DEMO_SERVER}`, // its command line
      "remote",
      "http://127.0.0.1:9/mcp",
      "", // no more servers
      "test", // environment
      "9123", // port
      "", // store: sqlite
      "alice", // admin
    ];
    const r = runWithInput(["init", "--dir", dir, "--json"], `${answers.join("\n")}\n`, { HOME: home });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { admin: { username: string; password: string } };
    assert.equal(out.admin.username, "alice");
    const { config } = loadConfig({ config: join(dir, "portcullis.yaml") });
    assert.equal(config.environment, "test");
    assert.equal(config.listen.port, 9123);
    assert.deepEqual(config.servers.tools, {
      ...config.servers.tools,
      transport: "stdio",
      command: process.execPath,
      args: [DEMO_SERVER],
    });
    assert.equal(config.servers.remote?.transport, "http");
    assert.match(r.stderr, /Server name/);
  });

  const script = spawnSync("script", ["--version"], { encoding: "utf8" });
  const noPty = script.status === 0 ? false : "util-linux `script` (a pseudo-terminal) is not installed";
  it("on a terminal it prompts through readline (driven through a pseudo-TTY)", { skip: noPty }, async () => {
    const dir = fresh();
    const answers = ["tools", `${process.execPath} ${DEMO_SERVER}`, "", "", "", "", "carol"];
    const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
    const command = [process.execPath, CLI, "init", "--dir", dir, "--json"].map(quote).join(" ");
    const r = spawnSync("script", ["-qec", command, "/dev/null"], {
      input: `${answers.join("\n")}\n`,
      env: { ...process.env, HOME: fresh() },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stdout);
    // Readline in terminal mode redraws its prompt with cursor escapes: the TTY path ran.
    const esc = String.fromCharCode(0x1b);
    assert.ok(r.stdout.includes(`${esc}[1G${esc}[0JAdmin username [admin]: `), r.stdout);
    const json = r.stdout.split(/\r?\n/).find((l) => l.startsWith('{"config"'));
    assert.ok(json, r.stdout);
    assert.equal((JSON.parse(json) as { admin: { username: string } }).admin.username, "carol");
    assert.deepEqual(Object.keys(loadConfig({ config: join(dir, "portcullis.yaml") }).config.servers), [
      "tools",
    ]);
  });

  it("answers that end too early are a usage error (exit 2) and no config is left behind", async () => {
    const dir = fresh();
    const r = runWithInput(["init", "--dir", dir], "", { HOME: fresh() });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /standard input closed/);
    assert.throws(() => statSync(join(dir, "portcullis.yaml")));
  });

  it("--dir that does not exist yet is created", async () => {
    const dir = join(fresh(), "new", "place");
    const r = await runCli(["init", "--yes", "--dir", dir, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, "portcullis.yaml")));
  });

  it("a bad --admin, --port or --environment is a usage error (exit 2) and nothing is written", async () => {
    const dir = fresh();
    for (const args of [
      ["--admin", "a b"],
      ["--port", "80000"],
      ["--environment", "Prod!"],
    ]) {
      const r = await runCli(["init", "--yes", "--dir", dir, ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(args[0] as string));
      assert.ok(!existsSync(join(dir, "portcullis.yaml")));
    }
  });

  it("an --import file that is not a client config is a usage error naming the file", async () => {
    const dir = fresh();
    const bad = join(dir, "notes.json");
    writeFileSync(bad, JSON.stringify({ hello: "world" }));
    const r = await runCli(["init", "--yes", "--import", bad, "--dir", dir]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /notes\.json: no MCP servers in it/);
    const missing = await runCli(["init", "--yes", "--import", join(dir, "nope.json"), "--dir", dir]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /nope\.json: cannot read it: ENOENT/);
  });
});

describe("portcullis init on PostgreSQL", async () => {
  const skip = await postgresSkip();
  it("--store with a password: the store is created, the admin is in it, and the password is not in the config", {
    skip,
  }, async () => {
    const db = await createTestDatabase();
    const dir = tempDir("portcullis-init-pg-");
    try {
      // The test server trusts local connections, so any password is accepted: what matters is where it is written.
      const url = new URL(db.url);
      url.username = url.username || "postgres";
      url.password = "hunter2-not-in-yaml";
      const r = await runCli(["init", "--yes", "--store", url.toString(), "--dir", dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /set PGPASSWORD/);
      const text = readFileSync(join(dir, "portcullis.yaml"), "utf8");
      assert.ok(!text.includes("hunter2"), text);
      const { config } = loadConfig({ config: join(dir, "portcullis.yaml") });
      const written = new URL(url);
      written.password = "";
      assert.equal(config.store, written.toString());
      const users = await runCli(["users", "list", "--config", join(dir, "portcullis.yaml"), "--json"]);
      assert.equal(users.code, 0, users.stderr);
      assert.deepEqual(
        (JSON.parse(users.stdout) as Array<{ username: string }>).map((u) => u.username),
        ["admin"],
      );
    } finally {
      cleanup(dir);
      await db.drop();
    }
  });
});
