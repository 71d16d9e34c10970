/**
 * Two real OAuth-capable MCP clients complete the built-in authorization server's flow on
 * their own, given only the server URL: `mcp-remote` (a stdio proxy, driven here by an SDK v1
 * stdio client) and the MCP Inspector CLI (`--cli`). Each discovers the AS, registers itself,
 * opens "the browser" with the `open` package — here $BROWSER, a script that signs in, consents
 * and delivers the code to the client's loopback callback (test/fixtures/headless-browser.ts) —
 * and then calls tools. The Inspector needs Node 22 (tools/node22); without it the Inspector
 * tests are skipped with the reason, except under CI=true where they must run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { openStore } from "../../src/store/open.js";
import { type HeadlessBrowser, headlessBrowser } from "../fixtures/headless-browser.js";
import { CLI, cleanup, tempDir } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";

const execFileP = promisify(execFile);
const MCP_REMOTE = resolve("node_modules/mcp-remote/dist/proxy.js");
const { findNode22, node22ToolsMissing, INSPECTOR_REL } = (await import(
  pathToFileURL(resolve("scripts/conformance.mjs")).href
)) as { findNode22(): string; node22ToolsMissing(needs?: string[]): string | null; INSPECTOR_REL: string };
const INSPECTOR = resolve("tools/node22", INSPECTOR_REL);

/** Node 22 for the Inspector, located as the conformance runner does, or why it is missing. */
function inspectorNode(): { node: string } | { missing: string } {
  const missing = node22ToolsMissing(["inspector"]);
  return missing === null ? { node: findNode22() } : { missing };
}

const platformSkip =
  process.platform === "linux" ? false : `the $BROWSER hand-off goes through xdg-open (Linux only)`;
const inspector = inspectorNode();
const inspectorSkip =
  platformSkip || ("missing" in inspector && process.env.CI !== "true" ? inspector.missing : false);
if (platformSkip) console.log(`# ${platformSkip}`);
else if (inspectorSkip) console.log(`# MCP Inspector CLI tests skipped: ${inspectorSkip}`);

describe("mcp-remote and the MCP Inspector CLI sign in headlessly to the built-in authorization server", {
  skip: platformSkip,
}, () => {
  const dir = tempDir("portcullis-headless-");
  let proc: ChildProcess;
  let base: string;
  let endpoint: string;
  let user: { username: string; password: string };
  /** tools/call echo requests each client made; the audit must show as many. */
  let echoCalls = 0;

  before(async () => {
    const cwd = join(dir, "gateway");
    mkdirSync(cwd);
    proc = spawn(process.execPath, [CLI, "start", "--port", "0"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let banner = "";
    proc.stderr?.on("data", (d: Buffer) => {
      banner += d.toString();
    });
    base = await new Promise<string>((resolveUrl, reject) => {
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === "portcullis listening") resolveUrl(entry.url as string);
      });
      proc.on("exit", (code) => reject(new Error(`gateway exited ${code}: ${banner}`)));
    });
    for (let i = 0; i < 100 && !/password: \S+/.test(banner); i++)
      await new Promise((r) => setTimeout(r, 50));
    const m = /username: (\S+) {3}password: (\S+)/.exec(banner);
    assert.ok(m, banner);
    user = { username: m[1] as string, password: m[2] as string };
    endpoint = `${base}/mcp/demo`;
  });

  after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    cleanup(dir);
  });

  it("mcp-remote opens the browser, receives the code on its callback and proxies tools over stdio", async () => {
    const home = join(dir, "mcp-remote");
    mkdirSync(home);
    const browser = headlessBrowser({ dir: home, user });
    const port = await freePort();
    const connect = async () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [MCP_REMOTE, endpoint, String(port)],
        env: { ...browser.env, HOME: home, MCP_REMOTE_CONFIG_DIR: join(home, "mcp-auth") },
        stderr: "pipe",
      });
      let stderr = "";
      transport.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const client = new Client({ name: "headless-e2e", version: "1" });
      try {
        await client.connect(transport);
      } catch (err) {
        throw new Error(
          `${(err as Error).message}\nmcp-remote: ${stderr}\nbrowser: ${JSON.stringify(browser.visits())}`,
        );
      }
      return client;
    };

    const client = await connect();
    try {
      const { tools } = await client.listTools();
      assert.ok(
        tools.some((t) => t.name === "echo"),
        JSON.stringify(tools.map((t) => t.name)),
      );
      const result = await client.callTool({ name: "echo", arguments: { text: "via mcp-remote" } });
      echoCalls++;
      assert.match(JSON.stringify(result.content), /via mcp-remote/);
    } finally {
      await client.close();
    }
    const visits = browser.visits();
    assert.equal(visits.length, 1, JSON.stringify(visits));
    const [visit] = visits;
    assert.equal(visit?.error, undefined);
    // mcp-remote's default callback host on Linux is `localhost`, not 127.0.0.1.
    assert.equal(visit?.callback, `http://localhost:${port}/oauth/callback`);
    assert.deepEqual(visit?.responseParams?.sort(), ["code", "iss", "state"]);
    assert.equal(new URL(visit?.authorization as string).searchParams.get("resource"), endpoint);

    // A new mcp-remote process with the same config dir uses the stored tokens: no browser.
    const again = await connect();
    try {
      const result = await again.callTool({ name: "echo", arguments: { text: "still signed in" } });
      echoCalls++;
      assert.match(JSON.stringify(result.content), /still signed in/);
    } finally {
      await again.close();
    }
    assert.equal(browser.visits().length, 1, "no second sign-in");
  });

  describe("MCP Inspector CLI", { skip: inspectorSkip }, () => {
    interface Profile {
      home: string;
      browser: HeadlessBrowser;
      callbackUrl: string;
    }
    let signedIn: Profile;

    /** A user's Inspector install: its own HOME (tokens, registration) and browser. */
    async function profile(name: string, decision: "allow" | "deny"): Promise<Profile> {
      const home = join(dir, name);
      mkdirSync(home);
      return {
        home,
        browser: headlessBrowser({ dir: home, user, decision }),
        callbackUrl: `http://127.0.0.1:${await freePort()}/oauth/callback`,
      };
    }

    /** `mcp-inspector --cli <endpoint> … --format json`; resolves with the exit code. */
    async function inspectorCli(
      p: Profile,
      args: string[],
    ): Promise<{ code: number; stdout: string; stderr: string; diagnostics: string }> {
      if ("missing" in inspector) throw new Error(inspector.missing);
      const argv = [INSPECTOR, "--cli", endpoint, "--transport", "http", "--callback-url", p.callbackUrl];
      let r: { code: number; stdout: string; stderr: string };
      try {
        r = {
          code: 0,
          ...(await execFileP(inspector.node, [...argv, ...args, "--format", "json"], {
            env: {
              ...p.browser.env,
              HOME: p.home,
              // Interactive OAuth without a TTY, opening the URL with `open` (hence $BROWSER).
              MCP_AUTO_OPEN_ENABLED: "true",
              MCP_INSPECTOR_SECRET_STORE: "file",
            },
            timeout: 60_000,
          })),
        };
      } catch (err) {
        const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
        r = {
          code: typeof e.code === "number" ? e.code : -1,
          stdout: e.stdout ?? "",
          stderr: e.stderr ?? e.message,
        };
      }
      const diagnostics = `exit ${r.code}\nstdout: ${r.stdout.slice(0, 400)}\nstderr: ${r.stderr}\nbrowser: ${JSON.stringify(p.browser.visits())}`;
      return { ...r, diagnostics };
    }

    before(async () => {
      signedIn = await profile("inspector", "allow");
    });

    it("--method tools/list signs in through the browser and prints the tools", async () => {
      const r = await inspectorCli(signedIn, ["--method", "tools/list"]);
      assert.equal(r.code, 0, r.diagnostics);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      const listed = (out.tools ?? (out.result as { tools?: unknown } | undefined)?.tools) as
        | { name: string }[]
        | undefined;
      assert.ok(
        listed?.some((t) => t.name === "echo"),
        JSON.stringify(out).slice(0, 400),
      );
      const visits = signedIn.browser.visits();
      assert.equal(visits.length, 1, JSON.stringify(visits));
      assert.equal(visits[0]?.callback, signedIn.callbackUrl);
      assert.deepEqual(visits[0]?.responseParams?.sort(), ["code", "iss", "state"]);
    });

    it("--method tools/call reuses the stored tokens and calls the tool", async () => {
      const r = await inspectorCli(signedIn, [
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "text=via inspector",
      ]);
      assert.equal(r.code, 0, r.diagnostics);
      echoCalls++;
      assert.match(r.stdout, /via inspector/);
      assert.equal(signedIn.browser.visits().length, 1, "no second sign-in");
    });

    it("declining consent in the browser ends the Inspector's sign-in with an error and no access", async () => {
      const declined = await profile("inspector-declined", "deny");
      const r = await inspectorCli(declined, ["--method", "tools/list"]);
      assert.notEqual(r.code, 0, r.diagnostics);
      assert.match(r.stderr, /denied/, r.diagnostics);
      assert.doesNotMatch(r.stdout, /"echo"/);
      const [visit] = declined.browser.visits();
      assert.ok(visit?.responseParams?.includes("error"), r.diagnostics);
      assert.ok(!visit?.responseParams?.includes("code"), r.diagnostics);
    });
  });

  it("the audit log attributes every tool call to the signed-in user through OAuth", async () => {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
    const store = await openStore(join(dir, "gateway", ".portcullis", "portcullis.db"));
    try {
      const echoes = (await store.listAudit({ limit: 1000 })).filter(
        (r) => r.rpcMethod === "tools/call" && r.tool === "echo",
      );
      assert.equal(echoes.length, echoCalls, JSON.stringify(echoes));
      for (const r of echoes) {
        assert.equal(r.decision, "allow");
        assert.equal(r.method, "oauth");
        assert.ok(r.principal?.startsWith(`oauth:${base}#`), r.principal ?? "no principal");
      }
      assert.equal(new Set(echoes.map((r) => r.principal)).size, 1, "one user behind both clients");
    } finally {
      await store.close();
    }
  });
});
