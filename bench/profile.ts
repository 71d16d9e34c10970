/**
 * A CPU profile of the gateway under the bench load: the echo server over HTTP behind
 * Portcullis (API key, default policy pack, audit on), `tools/call` at a fixed concurrency
 * for a fixed time, the gateway started with `node --cpu-prof`. Prints the request rate and
 * the gateway's CPU per call, then the summary (profileSummary.ts) of the samples taken
 * under load (start-up and shutdown left out).
 *
 *   npm run build && node dist/bench/profile.js [--seconds 20] [--concurrency 16] [--out summary.txt]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cpuMicros } from "./cpu.js";
import {
  call,
  closedLoop,
  ECHO_PINS,
  launchGateway,
  openSession,
  prepareGateway,
  progress,
  startEchoHttp,
} from "./harness.js";
import { summarise } from "./profileSummary.js";

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    concurrency: { type: "string", default: "16" },
    out: { type: "string" },
    /** Measure CPU per call without the profiler (to compare builds without its overhead). */
    "no-profile": { type: "boolean", default: false },
  },
});
const SECONDS = Number(flags.seconds);
const CONCURRENCY = Number(flags.concurrency);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "portcullis-profile-"));
  try {
    const echo = await startEchoHttp();
    const gw = await prepareGateway(work, {
      "echo-http": { transport: "http", url: echo.url, tools: ECHO_PINS },
    });
    const profDir = join(work, "prof");
    const profiling = !flags["no-profile"];
    const gateway = await launchGateway(
      gw.configFile,
      profiling ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [],
    );
    const session = await openSession(
      { name: "portcullis", url: `${gw.url}/mcp/echo-http`, headers: { authorization: `Bearer ${gw.key}` } },
      CONCURRENCY,
    );
    for (let i = 0; i < 200; i++) await call(session);
    progress(`profiling: ${SECONDS}s of tools/call at concurrency ${CONCURRENCY}`);
    const pid = gateway.pid as number;
    const cpu0 = cpuMicros(pid);
    const echo0 = cpuMicros(echo.pid);
    let calls = 0;
    let errors = 0;
    const from = Number(process.hrtime.bigint() / 1000n);
    await closedLoop(session, CONCURRENCY, Date.now() + SECONDS * 1000, (ok) => (ok ? calls++ : errors++));
    const to = Number(process.hrtime.bigint() / 1000n);
    const gatewayUs = (cpuMicros(pid) - cpu0) / calls;
    const upstreamUs = (cpuMicros(echo.pid) - echo0) / calls;
    await session.pool.close();
    const exited = new Promise((r) => gateway.once("exit", r));
    gateway.kill("SIGTERM");
    await exited;
    const head = [
      `load: API key, tools/call, concurrency ${CONCURRENCY}, ${SECONDS}s: ${Math.round(calls / SECONDS)} req/s, ${errors} errors`,
      `CPU per call: gateway ${Math.round(gatewayUs)} µs, echo upstream ${Math.round(upstreamUs)} µs${profiling ? " (includes the profiler's own overhead)" : ""}`,
      "",
    ].join("\n");
    let text = head;
    if (profiling) {
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
      if (!file) throw new Error("the gateway wrote no .cpuprofile");
      text += summarise(JSON.parse(readFileSync(join(profDir, file), "utf8")), 30, [from, to]);
    }
    if (flags.out) writeFileSync(flags.out, text);
    process.stdout.write(text);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`profile failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
