/**
 * What `portcullis start` prints works as printed: the `keys create` command, run in a shell
 * from another directory, mints a key for this gateway's store (not a new one where it was
 * run); the sample curl succeeds against the first server whatever MCP revision it speaks (a
 * 2025-only HTTP upstream answers a 2026-07-28 request with -32022); the Claude Desktop block
 * has no space inside an argument; the URLs carry the port actually bound.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { CLI, cleanup, DEMO_SERVER, EVERYTHING_SERVER, modern, rpc, tempDir } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";

const execFileP = promisify(execFile);

/** The environment of a user's shell: no npm variables (tests run under `npm test`). */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("npm_") && !k.startsWith("PORTCULLIS_")) env[k] = v;
  return { ...env, ...extra };
}

/** A directory on the PATH holding `portcullis`, linked to the built CLI as a global install links it (executable, as npm makes it). */
function installedOnPath(root: string): string {
  const bin = join(root, "bin");
  mkdirSync(bin);
  chmodSync(CLI, 0o755);
  symlinkSync(CLI, join(bin, "portcullis"));
  return bin;
}

interface Started {
  proc: ChildProcess;
  url: string;
  banner: string;
  stop(): Promise<void>;
}

async function startIn(cwd: string, args: string[], env: Record<string, string>): Promise<Started> {
  const proc = spawn(process.execPath, [CLI, "start", ...args], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let banner = "";
  proc.stderr?.on("data", (d: Buffer) => {
    banner += d.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === "portcullis listening") resolveUrl(entry.url as string);
    });
    proc.on("exit", (code) => reject(new Error(`exited ${code}: ${banner}`)));
  });
  await waitFor("the whole banner", () => desktopBlock(banner) !== null, { timeoutMs: 20_000 });
  return {
    proc,
    url,
    get banner() {
      return banner;
    },
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** The Claude Desktop JSON of the banner, or null while it is incomplete. */
function desktopBlock(
  banner: string,
): { mcpServers: Record<string, { args: string[]; env: Record<string, string> }> } | null {
  const at = banner.indexOf("Claude Desktop");
  if (at < 0) return null;
  const text = banner.slice(banner.indexOf("\n", at) + 1);
  const end = text.indexOf("\n  }\n");
  if (end < 0) return null;
  return JSON.parse(text.slice(0, end + 4));
}

/** The printed line that starts with `prefix` (after its indentation). */
function printedLine(banner: string, pattern: RegExp): string {
  const line = banner.split("\n").find((l) => pattern.test(l.trim()));
  assert.ok(line, `no line matching ${pattern} in:\n${banner}`);
  return line.trim();
}

/** The sample curl command: its lines, continuation backslashes kept, as a shell reads them. */
function printedCurl(banner: string): string {
  const lines = banner.split("\n");
  const at = lines.findIndex((l) => l.trim().startsWith("curl "));
  assert.ok(at >= 0, banner);
  const out: string[] = [];
  for (let i = at; i < lines.length; i++) {
    out.push(lines[i] as string);
    if (!(lines[i] as string).endsWith("\\")) break;
  }
  return out.join("\n");
}

async function sh(command: string, cwd: string, env: Record<string, string>) {
  try {
    const { stdout, stderr } = await execFileP("/bin/sh", ["-c", command], { cwd, env, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}

describe("the banner's printed commands work verbatim (config-file start)", () => {
  const root = tempDir("portcullis-banner-");
  const home = join(root, "gateway");
  const elsewhere = join(root, "elsewhere");
  let env: Record<string, string>;
  let gw: Started;

  before(async () => {
    mkdirSync(home);
    mkdirSync(elsewhere);
    env = userEnv({ PATH: `${installedOnPath(root)}${delimiter}${process.env.PATH ?? ""}` });
    writeFileSync(
      join(home, "portcullis.yaml"),
      stringify({
        dataDir: "data",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      }),
    );
    // Found in the working directory, as a user who `cd`s to it and runs `portcullis start`.
    gw = await startIn(home, ["--port", "0"], env);
  });
  after(async () => {
    await gw.stop();
    cleanup(root);
  });

  it("prints URLs with the port actually bound, and says which config it found", () => {
    const port = new URL(gw.url).port;
    assert.notEqual(port, "0");
    assert.ok(gw.banner.includes(`MCP endpoint  ${gw.url}/mcp/demo`), gw.banner);
    assert.ok(!gw.banner.includes(":0/"), gw.banner);
    assert.match(
      gw.banner,
      new RegExp(`using +config ${join(home, "portcullis.yaml")} \\(found in the working directory\\)`),
    );
  });

  it("prints `portcullis keys create … --config <absolute path>`, which run from another directory mints a key this gateway accepts", async () => {
    const create = printedLine(gw.banner, /^portcullis keys create /);
    assert.ok(create.includes(`--config ${join(home, "portcullis.yaml")}`), create);
    const r = await sh(create, elsewhere, env);
    assert.equal(r.code, 0, r.stderr);
    const key = /pcl_dev_\S+/.exec(r.stdout)?.[0];
    assert.ok(key, r.stdout);
    const call = modern(1, "tools/list", {}, key);
    assert.equal((await rpc(`${gw.url}/mcp/demo`, call.body, call.headers)).status, 200);
    assert.deepEqual(readdirSync(elsewhere), [], "no store created where the command ran");

    // The sample curl, verbatim, with the key in the variable it names.
    const curl = printedCurl(gw.banner);
    assert.match(curl, /\$PORTCULLIS_KEY/);
    const answered = await sh(curl, elsewhere, { ...env, PORTCULLIS_KEY: key });
    assert.equal(answered.code, 0, answered.stderr);
    assert.match(answered.stdout, /"result"/, answered.stdout);
    assert.match(answered.stdout, /"tools"/, answered.stdout);

    // And the printed `keys list` sees that key.
    const list = await sh(printedLine(gw.banner, /^portcullis keys list /), elsewhere, env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /my-agent/);
  });

  it("prints a Claude Desktop block whose mcp-remote arguments hold no space (the header value is in env)", () => {
    const desktop = desktopBlock(gw.banner);
    assert.ok(desktop);
    const server = desktop.mcpServers.demo;
    assert.ok(server);
    for (const arg of server.args)
      assert.ok(!arg.includes(" "), `argument with a space: ${JSON.stringify(arg)}`);
    assert.ok(server.args.includes(`Authorization:$\{AUTH_HEADER}`), JSON.stringify(server.args));
    assert.match(server.env.AUTH_HEADER as string, /^Bearer \S+$/);
  });
});

describe("the banner's sample curl works against a 2025-only HTTP upstream", () => {
  const root = tempDir("portcullis-banner-legacy-");
  let legacy: ChildProcess;
  let listenPort: number;
  let gw: Started;
  let env: Record<string, string>;

  before(async () => {
    const port = await freePort();
    legacy = spawn(process.execPath, [EVERYTHING_SERVER, "streamableHttp"], {
      env: { ...process.env, PORT: String(port) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    await new Promise<void>((resolveUp, reject) => {
      legacy.stderr?.on("data", (d: Buffer) => {
        if (d.toString().includes("listening")) resolveUp();
      });
      legacy.on("exit", (code) => reject(new Error(`server-everything exited ${code}`)));
    });
    env = userEnv();
    const config = join(root, "gateway.yaml");
    writeFileSync(
      config,
      stringify({
        dataDir: join(root, "data"),
        listen: { port: 8080 },
        servers: { legacy: { transport: "http", url: `http://127.0.0.1:${port}/mcp` } },
      }),
    );
    // --port overrides the file's listen.port, and every printed URL follows it.
    listenPort = await freePort();
    gw = await startIn(root, ["--config", config, "--port", String(listenPort)], env);
  });
  after(async () => {
    await gw.stop();
    legacy.kill();
    cleanup(root);
  });

  it("prints the --port given, not the file's 8080", () => {
    assert.equal(gw.url, `http://127.0.0.1:${listenPort}`);
    assert.ok(gw.banner.includes(`MCP endpoint  http://127.0.0.1:${listenPort}/mcp/legacy`), gw.banner);
    assert.ok(!gw.banner.includes(":8080"), gw.banner);
  });

  it("answers the printed curl with a result, where a 2026-07-28 request gets -32022", async () => {
    const create = printedLine(gw.banner, /keys create /);
    const r = await sh(create, tempDir("portcullis-banner-cwd-"), env);
    assert.equal(r.code, 0, r.stderr);
    const key = /pcl_dev_\S+/.exec(r.stdout)?.[0] as string;
    assert.ok(key, r.stdout);

    const modernCall = modern(1, "tools/list", {}, key);
    const refused = await rpc(`${gw.url}/mcp/legacy`, modernCall.body, modernCall.headers);
    assert.equal((refused.json.error as { code: number }).code, -32022, "the upstream speaks only 2025-x");

    const answered = await sh(printedCurl(gw.banner), root, { ...env, PORTCULLIS_KEY: key });
    assert.equal(answered.code, 0, answered.stderr);
    assert.match(answered.stdout, /"result"/, answered.stdout);
    assert.match(answered.stdout, /"protocolVersion":"2025-/, answered.stdout);
  });
});

describe("the banner names the CLI as it was invoked", () => {
  it("from a clone through npm (npm start): `npx --prefix <clone> portcullis`, which works from another directory", async () => {
    const root = tempDir("portcullis-banner-npm-");
    const clone = resolve(".");
    const env = userEnv({
      npm_lifecycle_event: "start",
      npm_package_json: join(clone, "package.json"),
    });
    const gw = await startIn(root, ["--port", "0", "--data-dir", join(root, "data")], env);
    try {
      const list = printedLine(gw.banner, /keys list /);
      assert.ok(
        list.startsWith(
          `npx --prefix ${clone} portcullis keys list --no-config --data-dir ${join(root, "data")}`,
        ),
        list,
      );
      // Real npx, from a directory that is neither the clone nor the gateway's, and holds a
      // portcullis.yaml of its own (which --no-config keeps the command from using).
      const other = tempDir("portcullis-banner-cwd-");
      writeFileSync(join(other, "portcullis.yaml"), stringify({ environment: "prod", store: "other.db" }));
      const r = await sh(list, other, userEnv());
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /dev-key/, "the embedded default's first-run key, in the gateway's store");
    } finally {
      await gw.stop();
      cleanup(root);
    }
  });

  it("neither installed nor run by npm: `node <absolute path of the CLI>`", async () => {
    const root = tempDir("portcullis-banner-node-");
    const gw = await startIn(root, ["--port", "0"], userEnv({ PATH: process.env.PATH ?? "" }));
    try {
      const list = printedLine(gw.banner, /keys list /);
      assert.ok(
        list.startsWith(`node ${CLI} keys list --no-config --data-dir ${join(root, ".portcullis")}`),
        list,
      );
      assert.ok(existsSync(join(root, ".portcullis", "portcullis.db")));
    } finally {
      await gw.stop();
      cleanup(root);
    }
  });
});

describe("the banner never prints the store's password", { skip: await postgresSkip() }, () => {
  let db: TestDatabase;
  const root = tempDir("portcullis-banner-pg-");
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
    cleanup(root);
  });

  it("masks it in --store and says to fill it in (PostgreSQL given on the command line)", async () => {
    const url = new URL(db.url);
    // A local test server trusts its clients: any password passes, and must not be printed.
    if (url.password === "") url.password = "banner-must-not-print-this";
    const gw = await startIn(
      root,
      ["--port", "0", "--data-dir", join(root, "data"), "--store", url.toString()],
      userEnv(),
    );
    try {
      assert.ok(!gw.banner.includes(url.password), "no password in the banner");
      const list = printedLine(gw.banner, /keys list /);
      assert.ok(list.includes(`--store '${url.protocol}//${url.username}:***@${url.host}`), list);
      assert.match(gw.banner, /replace \*\*\* with the store's password/);
    } finally {
      await gw.stop();
    }
  });
});
