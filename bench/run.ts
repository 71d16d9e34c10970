/**
 * The gateway benchmark. In one run, against the same upstream (the minimal echo MCP
 * server, over HTTP and over stdio), it measures latency at concurrency 1 and throughput at
 * concurrency 32 for: the upstream directly; Portcullis with an API key; and the
 * unauthenticated bridges supergateway and mcp-proxy in front of the same stdio server.
 * Budgets are reported as ratios measured in this run, never asserted by tests.
 *
 *   npm run bench [-- --quick] [-- --json]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { Pool } from "undici";
import { stringify } from "yaml";
import { type AuthnCost, measureAuthn } from "./authn.js";
import { type FirstConnection, measureFirstConnection } from "./firstConnection.js";
import { type ListFilterCost, measureListFilter, measurePolicy, type PolicyCost } from "./policy.js";

const ECHO_PINS = { echo: { tier: "read", openWorld: false } };
const args = new Set(process.argv.slice(2));
const QUICK = args.has("--quick");
const JSON_OUT = args.has("--json");
const LATENCY_REQUESTS = QUICK ? 600 : 3000;
const WARMUP = QUICK ? 200 : 500;
const THROUGHPUT_SECONDS = QUICK ? 3 : 10;
const CONCURRENCY = 32;

const ECHO = resolve("dist/bench/echo-server.js");
const CLI = resolve("dist/src/cli/main.js");
const BIN = resolve("node_modules/.bin");

function progress(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** Starts a process and waits until `ready(line)` matches a line of its stdout or stderr. */
function startProcess(
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

async function waitForHttp(url: string): Promise<void> {
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

interface Target {
  name: string;
  url: string;
  headers: Record<string, string>;
}

interface Session {
  pool: Pool;
  path: string;
  headers: Record<string, string>;
}

async function openSession(t: Target, connections: number): Promise<Session> {
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
async function call(s: Session): Promise<void> {
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

function percentile(sorted: number[], p: number): number {
  const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, idx)] as number;
}

interface Row {
  target: string;
  p50Ms: number;
  p99Ms: number;
  rps: number;
  errors: number;
}

/**
 * Latency at concurrency 1, interleaved: every target gets a slice of calls in each round,
 * so drift in the machine's load (it is shared) affects all targets alike.
 */
async function measureLatency(targets: Target[]): Promise<Map<string, number[]>> {
  const sessions = await Promise.all(targets.map((t) => openSession(t, 1)));
  for (const s of sessions) for (let i = 0; i < WARMUP; i++) await call(s);
  const samples = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const rounds = 20;
  for (let r = 0; r < rounds; r++) {
    for (const [i, t] of targets.entries()) {
      const session = sessions[i] as Session;
      const out = samples.get(t.name) as number[];
      for (let n = 0; n < LATENCY_REQUESTS / rounds; n++) {
        const t0 = process.hrtime.bigint();
        await call(session);
        out.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  }
  await Promise.all(sessions.map((s) => s.pool.close()));
  for (const list of samples.values()) list.sort((a, b) => a - b);
  return samples;
}

async function measure(t: Target, samples: number[]): Promise<Row> {
  const multi = await openSession(t, CONCURRENCY);
  let done = 0;
  let errors = 0;
  const warmEnd = Date.now() + 500;
  const end = warmEnd + THROUGHPUT_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        try {
          await call(multi);
          if (Date.now() >= warmEnd) done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  await multi.pool.close();
  return {
    target: t.name,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    rps: done / THROUGHPUT_SECONDS,
    errors,
  };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
  try {
    progress(
      `mode ${QUICK ? "quick" : "full"}: ${LATENCY_REQUESTS} sequential calls, ${THROUGHPUT_SECONDS}s at concurrency ${CONCURRENCY} per target`,
    );
    const echoHttp = await startProcess(
      process.execPath,
      [ECHO, "http", "--port", "0"],
      /listening (http:\/\/\S+)/,
    );
    const directUrl = echoHttp.match[1] as string;

    const config = {
      environment: "dev",
      dataDir: join(work, "data"),
      oauth: { mode: "builtin" },
      listen: { host: "127.0.0.1", port: await freePort() },
      log: { level: "info" },
      // The default policy pack is on (no `policy` key); the echo fixture has no annotations,
      // so the operator pins its tier, as they would for any unannotated read-only tool.
      servers: {
        "echo-http": { transport: "http", url: directUrl, tools: ECHO_PINS },
        "echo-stdio": {
          transport: "stdio",
          command: process.execPath,
          args: [ECHO, "stdio"],
          tools: ECHO_PINS,
        },
      },
    };
    const configFile = join(work, "portcullis.yaml");
    writeFileSync(configFile, stringify(config));
    const key = (
      JSON.parse(
        execFileSync(
          process.execPath,
          [CLI, "keys", "create", "--name", "bench", "--config", configFile, "--json"],
          { encoding: "utf8" },
        ),
      ) as { key: string }
    ).key;
    const benchUser = { username: "bench", password: "bench-password-not-secret" };
    execFileSync(
      process.execPath,
      [CLI, "users", "add", benchUser.username, "--password-stdin", "--config", configFile],
      {
        input: benchUser.password,
      },
    );
    await startProcess(process.execPath, [CLI, "start", "--config", configFile], /portcullis listening/);
    const gw = `http://127.0.0.1:${config.listen.port}`;
    const auth = { authorization: `Bearer ${key}` };

    const sgPort = await freePort();
    startProcess(
      join(BIN, "supergateway"),
      [
        "--stdio",
        `${process.execPath} ${ECHO} stdio`,
        "--outputTransport",
        "streamableHttp",
        "--stateful",
        "--port",
        String(sgPort),
        "--logLevel",
        "none",
      ],
      /$^/,
    ).catch(() => {});
    const mpPort = await freePort();
    startProcess(
      join(BIN, "mcp-proxy"),
      ["--port", String(mpPort), "--host", "127.0.0.1", "--", process.execPath, ECHO, "stdio"],
      /$^/,
    ).catch(() => {});
    await waitForHttp(`http://127.0.0.1:${sgPort}/mcp`);
    await waitForHttp(`http://127.0.0.1:${mpPort}/mcp`);

    progress(
      "measuring a new OAuth client's first connection (registration → authorization → token → first call)",
    );
    const firstConnection = await measureFirstConnection(
      gw,
      `${gw}/mcp/echo-http`,
      benchUser,
      QUICK ? 5 : 20,
    );
    const targets: Target[] = [
      { name: "direct-http", url: directUrl, headers: {} },
      { name: "portcullis-http (api key)", url: `${gw}/mcp/echo-http`, headers: auth },
      {
        name: "portcullis-http (oauth, built-in AS)",
        url: `${gw}/mcp/echo-http`,
        headers: { authorization: `Bearer ${firstConnection.accessToken}` },
      },
      { name: "portcullis-stdio (api key)", url: `${gw}/mcp/echo-stdio`, headers: auth },
      { name: "supergateway-stdio (no auth)", url: `http://127.0.0.1:${sgPort}/mcp`, headers: {} },
      { name: "mcp-proxy-stdio (no auth)", url: `http://127.0.0.1:${mpPort}/mcp`, headers: {} },
    ];
    progress("measuring per-request authentication cost (API key vs cached OAuth token)");
    const authn = await measureAuthn(QUICK);
    progress("measuring policy decisions (200 rules) and filtering a 500-tool list");
    const policy = { ...measurePolicy(QUICK ? 5_000 : 20_000), ...measureListFilter(QUICK ? 100 : 500) };
    const rows: Row[] = [];
    progress("measuring latency at concurrency 1 (interleaved rounds)");
    const latency = await measureLatency(targets);
    for (const t of targets) {
      progress(`measuring throughput of ${t.name}`);
      rows.push(await measure(t, latency.get(t.name) as number[]));
    }
    const by = (prefix: string) => rows.find((r) => r.target.startsWith(prefix)) as Row;
    const direct = by("direct-http");
    const pHttp = by("portcullis-http (api key)");
    const pOauth = by("portcullis-http (oauth");
    const pStdio = by("portcullis-stdio");
    const sg = by("supergateway");
    const mp = by("mcp-proxy");
    const summary = {
      addedP50Ms: round(pHttp.p50Ms - direct.p50Ms),
      addedP99Ms: round(pHttp.p99Ms - direct.p99Ms),
      oauthAddedP50Ms: round(pOauth.p50Ms - direct.p50Ms),
      oauthMinusApiKeyP50Ms: round(pOauth.p50Ms - pHttp.p50Ms),
      latencyRatioP50: round(pHttp.p50Ms / direct.p50Ms),
      throughputVsDirect: round(pHttp.rps / direct.rps),
      throughputVsSupergateway: round(pStdio.rps / sg.rps),
      throughputVsMcpProxy: round(pStdio.rps / mp.rps),
    };
    const targetsMet = {
      addedP50AtMost0_15ms: summary.addedP50Ms <= 0.15,
      addedP99AtMost1ms: summary.addedP99Ms <= 1,
      throughputAtLeastSupergateway: summary.throughputVsSupergateway >= 1,
      throughputAtLeastMcpProxy: summary.throughputVsMcpProxy >= 1,
      oauthWithin2UsOfApiKey: authn.oauthMinusApiKeyUs <= 2,
      authnAtMost5Us: authn.apiKeyUs.p50 <= 5 && authn.oauthCachedUs.p50 <= 5,
      firstConnectionUnder50ms: firstConnection.p50Ms < 50,
      policyDecisionP99AtMost10us: policy.decisionP99Us <= 10,
      listFilter500ToolsAtMost1ms: policy.listFilterP99Ms <= 1,
    };
    const result = {
      date: new Date().toISOString(),
      mode: QUICK ? "quick" : "full",
      node: process.version,
      machine: { cpus: (await import("node:os")).cpus().length },
      latencyRequests: LATENCY_REQUESTS,
      throughputSeconds: THROUGHPUT_SECONDS,
      concurrency: CONCURRENCY,
      rows: rows.map((r) => ({ ...r, p50Ms: round(r.p50Ms), p99Ms: round(r.p99Ms), rps: Math.round(r.rps) })),
      authn,
      // The access token was only a means to the OAuth rows: never written out.
      firstConnection: { ...firstConnection, accessToken: undefined },
      policy,
      summary,
      targetsMet,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/latest.json", `${JSON.stringify(result, null, 2)}\n`);
    if (JSON_OUT) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(renderTable(result.rows, summary, targetsMet, authn, firstConnection, policy));
  } finally {
    for (const c of children) c.kill("SIGTERM");
    rmSync(work, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function renderTable(
  rows: Row[],
  summary: Record<string, number>,
  met: Record<string, boolean>,
  authn: AuthnCost,
  first: FirstConnection,
  policy: PolicyCost & ListFilterCost,
): string {
  const head = ["target", "p50 ms (c=1)", "p99 ms (c=1)", `req/s (c=${CONCURRENCY})`, "errors"];
  const body = rows.map((r) => [
    r.target,
    r.p50Ms.toFixed(3),
    r.p99Ms.toFixed(3),
    String(Math.round(r.rps)),
    String(r.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  const lines = [fmt(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(fmt), ""];
  lines.push(
    `Portcullis (HTTP upstream) adds ${summary.addedP50Ms} ms at p50 and ${summary.addedP99Ms} ms at p99 over direct (targets ≤ 0.15 / ≤ 1)`,
  );
  lines.push(
    `Portcullis stdio throughput: ${summary.throughputVsSupergateway}× supergateway, ${summary.throughputVsMcpProxy}× mcp-proxy (target ≥ 1.0×)`,
  );
  lines.push(
    `Authentication per request: API key p50 ${authn.apiKeyUs.p50} µs (p99 ${authn.apiKeyUs.p99}), OAuth JWT cached p50 ${authn.oauthCachedUs.p50} µs (p99 ${authn.oauthCachedUs.p99}); difference ${authn.oauthMinusApiKeyUs} µs (target ≤ 2); first JWT verification ${authn.oauthFirstVerifyUs} µs`,
  );
  lines.push(
    `OAuth (built-in AS token) through Portcullis: ${summary.oauthAddedP50Ms} ms over direct at p50, ${summary.oauthMinusApiKeyP50Ms} ms vs the API key`,
  );
  lines.push(
    `Policy decision (${policy.rules} rules): p50 ${policy.decisionP50Us} µs, p99 ${policy.decisionP99Us} µs (target p99 ≤ 10); filtering a ${policy.tools}-tool list: p50 ${policy.listFilterP50Ms} ms, p99 ${policy.listFilterP99Ms} ms (target ≤ 1)`,
  );
  lines.push(
    `New OAuth client, first connection (${first.steps.join(" → ")}): p50 ${first.p50Ms} ms, p90 ${first.p90Ms} ms over ${first.runs} runs (target < 50 ms)`,
  );
  lines.push(
    `targets met: ${Object.entries(met)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`,
  );
  lines.push("written: bench/results/latest.json", "");
  return lines.join("\n");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
