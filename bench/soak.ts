/**
 * The soak: Portcullis under steady load for a long time, with the default audit mode
 * (`audit.arguments: redacted`, so every call's arguments go through secretlint), to show
 * that a request costs the same on day 30 as in minute 1. The load is closed-loop (a few
 * clients, each sending its next `tools/call` when the last one answered) against the echo
 * server over HTTP, every call with different arguments holding secrets to mask.
 *
 * Each window (a minute, or a fifth of a short run) prints the throughput, the gateway's CPU
 * time per request, resident memory and V8 heap (the lowest sample of the window: the heap
 * after collection) and the audit writer's backlog, all read from the gateway's own
 * /metrics. After the first window (warm-up), a least-squares line through the windows must
 * not fall by more than `--tolerance` of the mean (throughput), nor rise by more than
 * `--tolerance` (CPU per request) or `--tolerance` and a slack (memory); the audit backlog
 * must drain once the load stops, and `audit verify` must pass on the chain written. Any
 * failure exits 1. On a shared machine throughput also follows the neighbours' load; CPU
 * time per request does not, so it tells a gateway that slows down from a busy machine.
 *
 *   npm run soak [-- --minutes 10] [-- --concurrency 2] [-- --tolerance 0.2] [-- --nice 5]
 *   npm run soak -- --minutes 0.5        (a short smoke run)
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { stringify } from "yaml";
import { freePort } from "./harness.js";

const { values: flags } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    concurrency: { type: "string", default: "2" },
    tolerance: { type: "string", default: "0.2" },
    nice: { type: "string", default: "0" },
    credential: { type: "string", default: "api-key" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  process.stdout.write(`Usage: npm run soak -- [options]

Portcullis under steady load (default audit mode) against the bench's echo server; prints
throughput, CPU per request, RSS, heap and the audit backlog per window, and exits 1 when
throughput falls, CPU per request or memory rises (after the warm-up window), the audit
backlog does not drain, or audit verify fails.

  --minutes N        length of the run (default 10)
  --concurrency N    closed-loop clients (default 2)
  --tolerance F      allowed trend as a fraction of the mean (default 0.2)
  --nice N           niceness of the gateway process (default 0)
  --credential C     api-key (default) or task: a task token owned by the soak's key
                     (portcullis tasks start), the whole run on one task
  -h, --help         this text
`);
  process.exit(0);
}
const MINUTES = Number(flags.minutes);
const CONCURRENCY = Number(flags.concurrency);
const TOLERANCE = Number(flags.tolerance);
const NICE = Number(flags.nice);
const CREDENTIAL = flags.credential;
const TOTAL_MS = MINUTES * 60_000;
/** A minute, or a fifth of a run shorter than five minutes. */
const WINDOW_MS = Math.min(60_000, TOTAL_MS / 5);
const SAMPLE_MS = Math.min(5_000, WINDOW_MS / 4);
/** Memory may grow by this much beyond the tolerance (allocator and JIT noise). */
const SLACK_BYTES = { rss: 32 * 2 ** 20, heap: 16 * 2 ** 20 };

const ECHO = resolve("dist/bench/echo-server.js");
const CLI = resolve("dist/src/cli/main.js");
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

function say(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/** Starts a process and resolves with the first line of its stdout matching `ready`. */
function start(argv: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(proc);
  if (NICE !== 0 && proc.pid !== undefined) setPriority(proc.pid, NICE);
  return new Promise((res, rej) => {
    const seen: string[] = [];
    createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on("line", (l) => seen.push(l));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const m = ready.exec(line);
      if (m) res({ proc, match: m });
    });
    proc.on("exit", (code) => rej(new Error(`${argv.join(" ")} exited (${code}):\n${seen.join("\n")}`)));
  });
}

interface Sample {
  cpuSeconds: number;
  rss: number;
  heap: number;
  pending: number;
}

async function scrape(gw: string): Promise<Sample> {
  const text = await (await fetch(`${gw}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  return {
    cpuSeconds: metric("process_cpu_seconds_total"),
    rss: metric("process_resident_memory_bytes"),
    heap: metric("nodejs_heap_size_used_bytes"),
    pending: metric("portcullis_audit_pending_records"),
  };
}

interface Window {
  rps: number;
  /** Gateway CPU milliseconds per answered request. */
  cpuMs: number;
  rss: number;
  heap: number;
  pending: number;
  errors: number;
}

/** Least-squares change from the first to the last point, relative to `base`. */
function trend(ys: number[], base: number): number {
  const n = ys.length;
  if (n < 2 || base === 0) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  ys.forEach((y, x) => {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  });
  return ((sxy / sxx) * (n - 1)) / base;
}

async function main(): Promise<number> {
  if (!(MINUTES > 0) || !(CONCURRENCY >= 1)) throw new Error("--minutes and --concurrency must be positive");
  if (CREDENTIAL !== "api-key" && CREDENTIAL !== "task") throw new Error("--credential is api-key or task");
  if (CREDENTIAL === "task" && MINUTES > 60)
    throw new Error("--credential task: at most 60 minutes (tasks.maxTtlSeconds)");
  const work = mkdtempSync(join(tmpdir(), "portcullis-soak-"));
  try {
    const echo = await start([ECHO, "http", "--port", "0"], /listening (http:\/\/\S+)/);
    const configFile = join(work, "portcullis.yaml");
    writeFileSync(
      configFile,
      stringify({
        environment: "dev",
        dataDir: join(work, "data"),
        // A task token names the gateway's URL: a fixed port then.
        listen: { host: "127.0.0.1", port: CREDENTIAL === "task" ? await freePort() : 0 },
        // Default policy pack and default audit mode (redacted): what an operator runs.
        servers: { echo: { transport: "http", url: echo.match[1], tools: { echo: { tier: "read" } } } },
      }),
    );
    const cli = (args: string[]) =>
      execFileSync(process.execPath, [CLI, ...args, "--config", configFile, "--json"], { encoding: "utf8" });
    const created = JSON.parse(cli(["keys", "create", "--name", "soak"])) as { key: string; id: string };
    const key =
      CREDENTIAL === "task"
        ? (
            JSON.parse(
              cli([
                "tasks",
                "start",
                "--owner",
                `key:${created.id}`,
                "--servers",
                "echo:echo",
                "--ttl",
                "1h",
                "--purpose",
                "soak",
              ]),
            ) as { token: string }
          ).token
        : created.key;
    const gateway = await start(
      [CLI, "start", "--config", configFile],
      /"url":"(http:[^"]+)".*"msg":"portcullis listening"/,
    );
    const gw = gateway.match[1] as string;
    const pool = new Pool(gw, { connections: CONCURRENCY, pipelining: 1 });
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${key}`,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": "echo",
    };
    const meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {},
      "io.modelcontextprotocol/clientInfo": { name: "soak", version: "1" },
    };
    say(
      `soak: ${MINUTES} min, ${CREDENTIAL === "task" ? "task token" : "API key"}, concurrency ${CONCURRENCY}, windows of ${WINDOW_MS / 1000} s, audit.arguments redacted (default)`,
    );
    say("window  elapsed   req/s  cpu ms/req   rss MB  heap MB  audit pending  errors");
    let done = 0;
    let errors = 0;
    let id = 0;
    const stopAt = Date.now() + TOTAL_MS;
    const client = async () => {
      while (Date.now() < stopAt) {
        const n = ++id;
        const text = `soak ${n}: mysql -uapp -pPw${n}x db; Authorization: Bearer tok${n}abcdefghijklmnop`;
        try {
          const res = await pool.request({
            path: "/mcp/echo",
            method: "POST",
            headers,
            body: JSON.stringify({
              jsonrpc: "2.0",
              id: n,
              method: "tools/call",
              params: { name: "echo", arguments: { text, n }, _meta: meta },
            }),
          });
          const body = await res.body.text();
          if (res.statusCode === 200 && body.includes(`soak ${n}:`)) done++;
          else errors++;
        } catch {
          errors++;
        }
      }
    };
    const load = Promise.all(Array.from({ length: CONCURRENCY }, client));
    const windows: Window[] = [];
    const began = Date.now();
    let cpuBefore = (await scrape(gw)).cpuSeconds;
    while (Date.now() < stopAt - WINDOW_MS / 2) {
      const from = { done, errors, at: Date.now() };
      const samples: Sample[] = [];
      const end = Math.min(from.at + WINDOW_MS, stopAt);
      while (Date.now() < end) {
        await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, end - Date.now())));
        samples.push(await scrape(gw));
      }
      const cpuAfter = samples.at(-1)?.cpuSeconds ?? cpuBefore;
      const w: Window = {
        rps: (done - from.done) / ((Date.now() - from.at) / 1000),
        cpuMs: ((cpuAfter - cpuBefore) * 1000) / Math.max(1, done - from.done),
        rss: Math.min(...samples.map((s) => s.rss)),
        heap: Math.min(...samples.map((s) => s.heap)),
        pending: samples.at(-1)?.pending ?? Number.NaN,
        errors: errors - from.errors,
      };
      cpuBefore = cpuAfter;
      windows.push(w);
      const mb = (b: number) => (b / 2 ** 20).toFixed(1).padStart(7);
      say(
        `${String(windows.length).padStart(6)}  ${((Date.now() - began) / 1000).toFixed(0).padStart(6)} s  ${w.rps.toFixed(1).padStart(6)}  ${w.cpuMs.toFixed(2).padStart(10)}  ${mb(w.rss)}  ${mb(w.heap)}  ${String(w.pending).padStart(13)}  ${String(w.errors).padStart(6)}`,
      );
    }
    await load;
    await pool.close();
    // The audit backlog drains once the load stops (nothing piles up behind the writer).
    let drained = false;
    for (let i = 0; i < 60 && !drained; i++) {
      drained = (await scrape(gw)).pending === 0;
      if (!drained) await new Promise((r) => setTimeout(r, 500));
    }
    const exited = new Promise((r) => gateway.proc.once("exit", r));
    gateway.proc.kill("SIGTERM");
    await exited;
    const verify = JSON.parse(cli(["audit", "verify"])) as {
      ok: boolean;
      chains: Array<{ records: number }>;
    };
    const recorded = verify.chains.reduce((n, c) => n + c.records, 0);

    const steady = windows.length > 2 ? windows.slice(1) : windows;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rpsTrend = trend(
      steady.map((w) => w.rps),
      mean(steady.map((w) => w.rps)),
    );
    const memTrend = (k: "rss" | "heap") => {
      const ys = steady.map((w) => w[k]);
      const first = ys[0] as number;
      const rise = trend(ys, first) * first;
      return { rise, ok: rise <= first * TOLERANCE + SLACK_BYTES[k] };
    };
    const cpuTrend = trend(
      steady.map((w) => w.cpuMs),
      mean(steady.map((w) => w.cpuMs)),
    );
    const rss = memTrend("rss");
    const heap = memTrend("heap");
    const first = windows[0] as Window;
    const last = windows.at(-1) as Window;
    const checks = {
      throughputFlat: rpsTrend >= -TOLERANCE,
      cpuPerRequestFlat: cpuTrend <= TOLERANCE,
      rssFlat: rss.ok,
      heapFlat: heap.ok,
      auditDrained: drained,
      auditVerified: verify.ok,
      noErrors: errors === 0,
    };
    say("");
    say(
      `first window: ${first.rps.toFixed(1)} req/s, ${first.cpuMs.toFixed(2)} cpu ms/req, rss ${(first.rss / 2 ** 20).toFixed(1)} MB, heap ${(first.heap / 2 ** 20).toFixed(1)} MB`,
    );
    say(
      `last window:  ${last.rps.toFixed(1)} req/s, ${last.cpuMs.toFixed(2)} cpu ms/req, rss ${(last.rss / 2 ** 20).toFixed(1)} MB, heap ${(last.heap / 2 ** 20).toFixed(1)} MB`,
    );
    say(
      `trend after warm-up: throughput ${(rpsTrend * 100).toFixed(1)}% (limit -${TOLERANCE * 100}%), cpu per request ${(cpuTrend * 100).toFixed(1)}% (limit +${TOLERANCE * 100}%), rss ${(rss.rise / 2 ** 20).toFixed(1)} MB, heap ${(heap.rise / 2 ** 20).toFixed(1)} MB`,
    );
    say(
      `requests ${done} answered, ${errors} failed; audit records ${recorded}, verify ${verify.ok ? "ok" : "FAILED"}`,
    );
    say(
      `checks: ${Object.entries(checks)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}`,
    );
    return Object.values(checks).every(Boolean) ? 0 : 1;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
