/**
 * Test helpers that run the real `portcullis` CLI as users do: a child process started
 * with a config file, and management commands with --json.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { stringify } from "yaml";

export const CLI = resolve("dist/src/cli/main.js");
export const DEMO_SERVER = resolve("dist/src/demo/server.js");
export const EVERYTHING_SERVER = resolve(
  "node_modules/@modelcontextprotocol/server-everything/dist/index.js",
);
/** Allows every request: for tests of everything but policy. */
export const ALLOW_ALL_POLICY = resolve("test/fixtures/policies/allow-all.yaml");
/** The policy pack the gateway uses when the config names none. */
export const DEFAULT_POLICY_PACK = resolve("policies/default");
const execFileP = promisify(execFile);

export function tempDir(prefix = "portcullis-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunningGateway {
  url: string;
  dir: string;
  configFile: string;
  proc: ChildProcess;
  /** Every stdout log line parsed as JSON, and the raw stderr. */
  logs: Record<string, unknown>[];
  stderr: string[];
  endpoint(server: string): string;
  /** Runs `portcullis <args> --config <file> --json` and parses its stdout. */
  cli(args: string[]): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  config: Record<string, unknown>;
  /** Extra CLI flags for `start`. */
  flags?: string[];
  env?: Record<string, string>;
  dir?: string;
  /** How long to wait for "portcullis listening" before killing it. Default 20 s. */
  startTimeoutMs?: number;
}

export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const dir = opts.dir ?? tempDir();
  const configFile = join(dir, "portcullis.yaml");
  // Tests of forwarding, sessions and OAuth run under an allow-all policy; tests of policy set
  // `policy` themselves (the default pack, or their own files).
  const policy = opts.config.policy === undefined ? { policy: { paths: [ALLOW_ALL_POLICY] } } : {};
  writeFileSync(
    configFile,
    stringify({ dataDir: join(dir, "data"), listen: { port: 0 }, ...policy, ...opts.config }),
  );
  const gw = await startGatewayWithConfigFile(configFile, opts);
  const stop = gw.stop;
  gw.stop = async () => {
    await stop();
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  };
  return gw;
}

/** `portcullis start --config <configFile>` for a config file the test wrote (or `portcullis init` did). */
export async function startGatewayWithConfigFile(
  configFile: string,
  opts: Omit<GatewayOptions, "config" | "dir"> = {},
): Promise<RunningGateway> {
  const dir = dirname(configFile);
  const proc = spawn(process.execPath, [CLI, "start", "--config", configFile, ...(opts.flags ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on("line", (l) => stderr.push(l));
  const url = await new Promise<string>((resolveUrl, reject) => {
    // A hang guard, not a speed claim: on a loaded machine startup can take a while.
    const timer = setTimeout(() => {
      proc.kill("SIGKILL"); // a gateway that did not start must not outlive the test
      reject(new Error(`gateway did not start:\n${stderr.join("\n")}`));
    }, opts.startTimeoutMs ?? 60_000);
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === "portcullis listening") {
          clearTimeout(timer);
          resolveUrl(String(entry.url));
        }
      } catch {
        stderr.push(line);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${stderr.join("\n")}`));
    });
  });
  return {
    url,
    dir,
    configFile,
    proc,
    logs,
    stderr,
    endpoint: (server) => `${url}/mcp/${server}`,
    async cli(args) {
      const r = await runCli([...args, "--config", configFile, "--json"], opts.env);
      if (r.code !== 0) throw new Error(`portcullis ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** `portcullis keys create --name <name> [args]`: the key string and its id. */
export async function createKey(
  gw: Pick<RunningGateway, "cli">,
  name: string,
  args: string[] = [],
): Promise<{ key: string; id: string }> {
  const created = await gw.cli(["keys", "create", "--name", name, ...args]);
  return { key: created.key as string, id: created.id as string };
}

/** A JSON-RPC POST as a bare HTTP client sends it. */
export async function rpc(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown>; text: string }> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  /** The JSON-RPC message (for SSE, the last one); `{}` when the body held none. */
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    const data = [...text.matchAll(/^data: (\{.*)$/gm)].at(-1);
    if (data) json = JSON.parse(data[1] as string) as Record<string, unknown>;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Headers and body of a 2026-07-28 (stateless) request. */
export function modern(
  id: number,
  method: string,
  params: Record<string, unknown> = {},
  key?: string,
): { body: Record<string, unknown>; headers: Record<string, string> } {
  const headers: Record<string, string> = { "mcp-protocol-version": "2026-07-28", "mcp-method": method };
  const name = (params.name ?? params.uri) as string | undefined;
  if (name !== undefined && ["tools/call", "resources/read", "prompts/get"].includes(method))
    headers["mcp-name"] = name;
  if (key) headers.authorization = `Bearer ${key}`;
  return {
    body: {
      jsonrpc: "2.0",
      id,
      method,
      params: {
        ...params,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientCapabilities": {},
          "io.modelcontextprotocol/clientInfo": { name: "portcullis-tests", version: "1" },
        },
      },
    },
    headers,
  };
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
