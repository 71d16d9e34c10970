/**
 * What the bench scripts share: starting processes (each its own, so /proc measures only
 * it), a gateway configured in a scratch directory, and MCP sessions driven over undici.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Pool } from "undici";
import { stringify } from "yaml";

export const ECHO = resolve("dist/bench/echo-server.js");
export const BARE_PROXY = resolve("dist/bench/bareProxy.js");
/**
 * The gateway under test: this checkout's build, or another build's CLI named by
 * PORTCULLIS_BENCH_CLI (to measure an earlier commit with the same bench, in the same run).
 */
export const CLI = resolve(process.env.PORTCULLIS_BENCH_CLI ?? "dist/src/cli/main.js");
export const BIN = resolve("node_modules/.bin");
export const ECHO_PINS = { echo: { tier: "read", openWorld: false } };

export function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

export const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** Starts a process and waits until `ready(line)` matches a line of its stdout or stderr. */
export function startProcess(
  cmd: string,
  argv: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(proc);
  return new Promise((res, rej) => {
    const seen: string[] = [];
    const timer = setTimeout(
      () => rej(new Error(`${cmd} ${argv.join(" ")} did not become ready:\n${seen.join("\n")}`)),
      30_000,
    );
    const onLine = (line: string) => {
      seen.push(line);
      const m = ready.exec(line);
      if (m) {
        clearTimeout(timer);
        res({ proc, match: m });
      }
    };
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", onLine);
    createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on("line", onLine);
    proc.on("exit", (code) => rej(new Error(`${cmd} exited (${code}):\n${seen.join("\n")}`)));
  });
}

export async function waitForHttp(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url, { method: "GET" });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} never answered`);
}

/** The echo server over HTTP, as its own process. */
export async function startEchoHttp(): Promise<{ url: string; pid: number }> {
  const echo = await startProcess(
    process.execPath,
    [ECHO, "http", "--port", "0"],
    /listening (http:\/\/\S+)/,
  );
  return { url: echo.match[1] as string, pid: echo.proc.pid as number };
}

/** A gateway config in `work` with its API key minted (default policy pack, audit on). */
export async function prepareGateway(
  work: string,
  servers: Record<string, unknown>,
  /** More top-level config (e.g. `spiffe`). */
  extra: Record<string, unknown> = {},
): Promise<{ configFile: string; key: string; keyId: string; url: string }> {
  const port = await freePort();
  const config = {
    environment: "dev",
    dataDir: join(work, "data"),
    oauth: { mode: "builtin" },
    listen: { host: "127.0.0.1", port },
    log: { level: "info" },
    servers,
    ...extra,
  };
  const configFile = join(work, "portcullis.yaml");
  writeFileSync(configFile, stringify(config));
  const created = JSON.parse(
    execFileSync(
      process.execPath,
      [CLI, "keys", "create", "--name", "bench", "--config", configFile, "--json"],
      {
        encoding: "utf8",
      },
    ),
  ) as { key: string; id: string };
  return { configFile, key: created.key, keyId: created.id, url: `http://127.0.0.1:${port}` };
}

/** `portcullis start` as its own process (the built CLI), with extra node flags if any. */
export async function launchGateway(configFile: string, nodeFlags: string[] = []): Promise<ChildProcess> {
  const started = await startProcess(
    process.execPath,
    [...nodeFlags, CLI, "start", "--config", configFile],
    /portcullis listening/,
  );
  return started.proc;
}

export interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
}

export interface Session {
  pool: Pool;
  path: string;
  headers: Record<string, string>;
}

export async function openSession(t: Target, connections: number): Promise<Session> {
  const url = new URL(t.url);
  const pool = new Pool(url.origin, { connections, pipelining: 1 });
  const base = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    ...t.headers,
  };
  const init = await pool.request({
    path: url.pathname,
    method: "POST",
    headers: base,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "bench", version: "1" },
      },
    }),
  });
  const text = await init.body.text();
  if (init.statusCode !== 200)
    throw new Error(`${t.name}: initialize answered ${init.statusCode}: ${text.slice(0, 300)}`);
  const session = init.headers["mcp-session-id"];
  const headers: Record<string, string> = { ...base, "mcp-protocol-version": "2025-11-25" };
  if (typeof session === "string") headers["mcp-session-id"] = session;
  const n = await pool.request({
    path: url.pathname,
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await n.body.text();
  return { pool, path: url.pathname, headers };
}

let nextId = 1;
/** One `tools/call` of the echo tool; throws unless it echoed. */
export async function call(s: Session): Promise<void> {
  const res = await s.pool.request({
    path: s.path,
    method: "POST",
    headers: s.headers,
    body: `{"jsonrpc":"2.0","id":${nextId++},"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 || !text.includes("hello"))
    throw new Error(`bad response ${res.statusCode}: ${text.slice(0, 200)}`);
}

/** Keeps `concurrency` calls in flight until `until` (ms since epoch); counts calls and errors. */
export async function closedLoop(
  s: Session,
  concurrency: number,
  until: number,
  count: (ok: boolean) => void,
): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        try {
          await call(s);
          count(true);
        } catch {
          count(false);
        }
      }
    }),
  );
}

export function percentile(sorted: number[], p: number): number {
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, idx)] as number;
}
