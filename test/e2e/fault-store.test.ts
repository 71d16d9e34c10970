/**
 * Fault suite, the store: what clients see when the database goes away under load, and what
 * the audit trail holds afterwards. Real `portcullis start` processes, a real PostgreSQL of
 * the test's own (test/helpers/privatePostgres.ts: the shared server is never stopped), a
 * stdio upstream that logs every call it receives.
 *
 * Claims: replicas survive a PostgreSQL restart under load (issue 10, item 12: every busy
 * replica used to crash on an unhandled 57P01 'error' event); while it is down they answer
 * 503 with Retry-After and a JSON-RPC / OAuth error body, never 401 (a 401 tells an OAuth
 * client to discard a valid token) nor 500; they serve again without a restart; nothing
 * reached the upstream without its audit record, and `audit verify` passes. A replica started
 * while the database is down waits for it (not ready meanwhile) instead of exiting. The
 * gateway SIGKILLed under load on either store loses no record of a call it forwarded.
 *
 * Timing is reported (t.diagnostic), never asserted.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { openStore } from "../../src/store/open.js";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import {
  ALLOW_ALL_POLICY,
  cleanup,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";
import { type Answer, startLoad } from "../helpers/load.js";
import { freePort } from "../helpers/net.js";
import {
  type PrivatePostgres,
  privatePostgresSkip,
  startPrivatePostgres,
} from "../helpers/privatePostgres.js";
import { waitFor } from "../helpers/wait.js";

const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const SECRET_VAR = "PORTCULLIS_FAULT_TEST_SECRET";
const TOOLS: ToolFile = {
  tools: [
    {
      name: "write_note",
      description: "Writes a note.",
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    },
  ],
};
/** The JSON-RPC code of a refusal because the store is unreachable (src/core/errors.ts). */
const STORE_UNAVAILABLE = -32019;

interface Replica {
  gw: RunningGateway;
  calls: string;
}

/** A replica's directory: its config, data and the upstream's call log. */
function replicaDir(root: string, name: string): { dir: string; calls: string; tools: string } {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const tools = join(dir, "tools.json");
  const calls = join(dir, "calls.jsonl");
  writeFileSync(tools, JSON.stringify(TOOLS));
  writeFileSync(calls, "");
  return { dir, calls, tools };
}

function gatewayConfig(store: string, tools: string, calls: string, extra: Record<string, unknown> = {}) {
  return {
    store,
    serverSecret: { env: SECRET_VAR },
    policy: { paths: [ALLOW_ALL_POLICY] },
    oauth: { mode: "builtin" },
    servers: {
      notes: {
        transport: "stdio",
        command: process.execPath,
        args: [MUTABLE_SERVER, tools, "--calls", calls],
      },
    },
    ...extra,
  };
}

/** Tags of the calls the upstream received: complete lines only, since the upstream may be mid-append while we read. */
function received(callsFile: string): string[] {
  const lines = readFileSync(callsFile, "utf8").split("\n");
  lines.pop(); // "" after the last newline, or a line still being written
  return lines.filter(Boolean).map((l) => (JSON.parse(l) as { arguments: { tag: string } }).arguments.tag);
}

/** Tags of the allowed write_note calls the audit trail holds. */
async function auditedTags(spec: string): Promise<Set<string>> {
  const store = await openStore(spec);
  try {
    const records = await store.searchAudit({ tool: "write_note", limit: 1_000_000 });
    return new Set(
      records
        .filter((r) => r.decision === "allow")
        .map((r) => (r.arguments as { tag?: string } | null | undefined)?.tag)
        .filter((t): t is string => t !== undefined),
    );
  } finally {
    await store.close();
  }
}

function writeCall(gw: RunningGateway, credential: string, tag: string, n: number) {
  const { body, headers } = modern(
    n + 1,
    "tools/call",
    { name: "write_note", arguments: { tag } },
    credential,
  );
  return rpc(gw.endpoint("notes"), body, headers);
}

async function clientCredentialsToken(
  gw: RunningGateway,
  clientId: string,
  secret: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${gw.url}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64")}`,
    },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      resource: gw.endpoint("notes"),
      scope: "mcp",
    }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function statusCounts(answers: Answer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
}

/** Status counts per worker, and each worker's last answer: what a failed wait saw. */
function byWorker(answers: Answer[]): string {
  const out: Record<string, { counts: Record<string, number>; last: string }> = {};
  for (const a of answers) {
    const w = out[a.worker] ?? { counts: {}, last: "" };
    w.counts[a.status] = (w.counts[a.status] ?? 0) + 1;
    w.last = `${a.status} ${a.body.slice(0, 300)}`;
    out[a.worker] = w;
  }
  return JSON.stringify(out, null, 1);
}

function alive(gw: RunningGateway): boolean {
  return gw.proc.exitCode === null && gw.proc.signalCode === null;
}

const skip = privatePostgresSkip();

describe("fault suite: PostgreSQL stopped and restarted under load", { skip }, () => {
  let pgs: PrivatePostgres;
  let root: string;
  const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };

  before(async () => {
    pgs = await startPrivatePostgres();
    root = tempDir("portcullis-fault-store-");
  });
  after(async () => {
    await pgs?.destroy();
    if (root) cleanup(root);
  });

  it("two replicas under load survive a PostgreSQL restart, answer 503 (never 401) while it is down, and serve again with every forwarded call audited", async (t: TestContext) => {
    const replicas: Record<string, Replica> = {};
    try {
      for (const name of ["a", "b"]) {
        const d = replicaDir(root, name);
        const gw = await startGateway({
          dir: d.dir,
          env,
          config: gatewayConfig(pgs.url(), d.tools, d.calls),
        });
        replicas[name] = { gw, calls: d.calls };
      }
      const a = replicas.a as Replica;
      const key = (await a.gw.cli(["keys", "create", "--name", "load"])).key as string;
      const client = await a.gw.cli([
        "clients",
        "create",
        "--name",
        "load",
        "--auth",
        "client_secret_basic",
        "--servers",
        "notes",
      ]);
      const clientId = client.clientId as string;
      const clientSecret = client.clientSecret as string;

      const workers: Record<string, Parameters<typeof startLoad>[0][string]> = {};
      for (const [name, r] of Object.entries(replicas)) {
        const list = modern(0, "tools/list", {}, key);
        assert.equal((await rpc(r.gw.endpoint("notes"), list.body, list.headers)).status, 200);
        const issued = await clientCredentialsToken(r.gw, clientId, clientSecret);
        assert.equal(issued.status, 200, issued.text);
        const token = (JSON.parse(issued.text) as { access_token: string }).access_token;
        for (const k of [0, 1])
          workers[`${name}/mcp/key${k}`] = (n) => writeCall(r.gw, key, `${name}-k${k}-${n}`, n);
        workers[`${name}/mcp/oauth`] = (n) => writeCall(r.gw, token, `${name}-o-${n}`, n);
        workers[`${name}/token`] = () => clientCredentialsToken(r.gw, clientId, clientSecret);
      }
      const load = startLoad(workers, { pauseMs: 10 });
      try {
        // Warm: every worker has been served.
        await waitFor(
          "every worker served",
          () => Object.keys(workers).every((w) => load.of(w).some((x) => x.status === 200)),
          { timeoutMs: 60_000 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${byWorker(load.answers)}`);
        });
        const stoppedAt = performance.now();
        await pgs.stop();
        const downAt = performance.now();
        // While it is down, both replicas keep answering: 503 for everything that needs the store.
        const living = () => {
          for (const [name, r] of Object.entries(replicas))
            if (!alive(r.gw)) throw new Error(`replica ${name} died:\n${r.gw.stderr.join("\n")}`);
        };
        await waitFor(
          "503s from both replicas",
          () => {
            living();
            return ["a", "b"].every(
              (r) =>
                load.of(`${r}/mcp/`, downAt).filter((x) => x.status === 503).length >= 5 &&
                load.of(`${r}/token`, downAt).some((x) => x.status === 503),
            );
          },
          { timeoutMs: 60_000 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${byWorker(load.answers)}`);
        });
        // Operators see it: not ready, and the store reported unreachable in the metrics.
        for (const r of Object.values(replicas)) {
          assert.equal((await fetch(`${r.gw.url}/readyz`)).status, 503, "not ready while the store is down");
          const metrics = await (await fetch(`${r.gw.url}/metrics`)).text();
          assert.match(metrics, /^portcullis_store_reachable 0$/m);
          assert.match(metrics, /^portcullis_store_connection_errors_total [1-9]/m);
        }
        await sleep(2_000); // stay down a while under load
        const restartAt = performance.now();
        await pgs.start();
        const upAt = performance.now();
        const recovered: Record<string, number> = {};
        await waitFor(
          "both replicas serving again",
          () => {
            living();
            for (const r of ["a", "b"]) {
              const first = load.of(`${r}/mcp/`, upAt).find((x) => x.status === 200);
              if (first && recovered[r] === undefined) recovered[r] = first.at - upAt;
            }
            return Object.keys(workers).every((w) => load.of(w, upAt).some((x) => x.status === 200));
          },
          { timeoutMs: 60_000 },
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${byWorker(load.answers)}`);
        });
        await sleep(500);
        await load.stop();
        for (const [name, r] of Object.entries(replicas)) {
          assert.equal((await fetch(`${r.gw.url}/readyz`)).status, 200, "ready again");
          const metrics = await (await fetch(`${r.gw.url}/metrics`)).text();
          assert.match(metrics, /^portcullis_store_reachable 1$/m);
          t.diagnostic(
            `replica ${name} metrics after: ${metrics
              .split("\n")
              .filter((l) => /^portcullis_(store_connection_errors_total|audit_write_errors_total) /.test(l))
              .join(", ")}`,
          );
        }

        for (const [name, r] of Object.entries(replicas)) {
          assert.ok(alive(r.gw), `replica ${name} survived the restart`);
          const during = load.answers.filter(
            (x) => x.worker.startsWith(`${name}/`) && x.at >= downAt && x.at <= upAt,
          );
          t.diagnostic(
            `replica ${name}: ${load.of(`${name}/`).length} answers; while down: ${JSON.stringify(statusCounts(during))}; first 200 after PostgreSQL accepted connections again: ${Math.round(recovered[name] ?? Number.NaN)} ms`,
          );
        }
        t.diagnostic(
          `pg_ctl stop took ${Math.round(downAt - stoppedAt)} ms, pg_ctl start ${Math.round(upAt - restartAt)} ms; answers by status: ${JSON.stringify(statusCounts(load.answers))}`,
        );
        const unexpected = load.answers.filter((x) => x.status !== 200 && x.status !== 503);
        assert.deepEqual(
          unexpected.map((x) => `${x.worker} ${x.status} ${x.body.slice(0, 200)}`),
          [],
          "every answer is 200 or 503: never 401, 500, or a dropped connection",
        );
        for (const x of load.answers.filter((y) => y.status === 503)) {
          assert.equal(x.retryAfter, "1", `${x.worker}: Retry-After on a 503`);
          const body = JSON.parse(x.body) as { error?: unknown };
          if (x.worker.includes("/mcp/"))
            assert.equal((body.error as { code?: number }).code, STORE_UNAVAILABLE, x.body);
          else assert.equal(body.error, "temporarily_unavailable", x.body);
        }
      } finally {
        await load.stop();
      }

      // Graceful stops flush what the replicas still hold; then the upstream's log is compared
      // with the audit trail.
      for (const r of Object.values(replicas)) await r.gw.stop();
      const audited = await auditedTags(pgs.url());
      const forwarded = Object.values(replicas).flatMap((r) => received(r.calls));
      assert.ok(forwarded.length > 50, `load reached the upstreams (${forwarded.length} calls)`);
      const missing = forwarded.filter((tag) => !audited.has(tag));
      assert.deepEqual(
        missing,
        [],
        `${missing.length} of ${forwarded.length} forwarded calls have no audit record`,
      );
      t.diagnostic(`${forwarded.length} calls reached the upstreams, all ${forwarded.length} audited`);
      const verify = await runCli(["audit", "verify", "--json", "--config", a.gw.configFile], env);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.equal((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
    } finally {
      for (const r of Object.values(replicas)) if (alive(r.gw)) r.gw.proc.kill("SIGKILL");
    }
  });

  it("a replica started while PostgreSQL is down waits for it (not ready, 503 meanwhile) and serves once it is up", async (t: TestContext) => {
    const d = replicaDir(root, "late");
    const config = gatewayConfig(pgs.url(), d.tools, d.calls);
    writeFileSync(join(d.dir, "cli.yaml"), stringify({ ...config, dataDir: join(d.dir, "cli-data") }));
    const created = await runCli(
      ["keys", "create", "--name", "late", "--json", "--config", join(d.dir, "cli.yaml")],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const key = (JSON.parse(created.stdout) as { key: string }).key;

    await pgs.stop();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const starting = startGateway({
      dir: d.dir,
      env,
      config: { ...config, listen: { port } },
      startTimeoutMs: 120_000,
    });
    let gw: RunningGateway | null = null;
    try {
      const readyz = await waitFor(
        "the waiting replica to answer",
        async () => {
          try {
            return await fetch(`${base}/readyz`);
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 60_000 },
      );
      assert.equal(readyz.status, 503, "not ready while the store is unreachable");
      const healthz = await fetch(`${base}/healthz`);
      assert.equal(healthz.status, 200, "alive: an orchestrator must not kill it for waiting");
      assert.deepEqual(await healthz.json(), { status: "starting" });
      const call = modern(1, "tools/call", { name: "write_note", arguments: { tag: "early" } }, key);
      const early = await rpc(`${base}/mcp/notes`, call.body, call.headers);
      assert.equal(early.status, 503);
      assert.equal(early.headers.get("retry-after"), "1");
      assert.equal((early.json.error as { code: number }).code, STORE_UNAVAILABLE);
      // Old builds gave up after about 4 s: stay down well past that.
      await sleep(6_000);
      assert.equal((await fetch(`${base}/readyz`)).status, 503, "still waiting, still not ready");
      const upAt = performance.now();
      await pgs.start();
      gw = await starting;
      const servedAfter = performance.now() - upAt;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const list = modern(2, "tools/list", {}, key);
      assert.equal((await rpc(gw.endpoint("notes"), list.body, list.headers)).status, 200);
      const late = modern(3, "tools/call", { name: "write_note", arguments: { tag: "late" } }, key);
      assert.equal((await rpc(gw.endpoint("notes"), late.body, late.headers)).status, 200);
      assert.deepEqual(received(d.calls), ["late"], "the call made while waiting never reached the upstream");
      const waited = gw.logs.filter((l) => l.event === "store.waiting").length;
      assert.ok(waited > 0, "the wait is logged");
      t.diagnostic(
        `waited through ${waited} logged attempts; listening ${Math.round(servedAfter)} ms after PostgreSQL started`,
      );
    } finally {
      if (gw === null) gw = await starting.catch(() => null);
      await gw?.stop();
      if (pgs && !(await isUp(pgs))) await pgs.start();
    }
  });

  it("the gateway SIGKILLed under load on PostgreSQL: every call the upstream received has its audit record", async (t) => {
    await sigkillUnderLoad(t, pgs.url(), root, env);
  });
});

describe("fault suite: the gateway SIGKILLed under load on SQLite", () => {
  it("every call the upstream received has its audit record and the chain verifies", async (t) => {
    const root = tempDir("portcullis-fault-sqlite-");
    try {
      await sigkillUnderLoad(t, null, root, { [SECRET_VAR]: randomBytes(48).toString("base64") });
    } finally {
      cleanup(root);
    }
  });
});

async function isUp(pgs: PrivatePostgres): Promise<boolean> {
  try {
    const store = await openStore(pgs.url());
    await store.close();
    return true;
  } catch {
    return false;
  }
}

/** Write-tier calls from four clients, SIGKILL mid-load, then upstream log vs audit trail. */
async function sigkillUnderLoad(
  t: TestContext,
  pgUrl: string | null,
  root: string,
  env: Record<string, string>,
): Promise<void> {
  const d = replicaDir(root, `kill-${randomBytes(3).toString("hex")}`);
  const sqlite = join(d.dir, "data", "portcullis.db");
  const config = gatewayConfig(pgUrl ?? sqlite, d.tools, d.calls);
  const gw = await startGateway({ dir: d.dir, env, config });
  try {
    const key = (await gw.cli(["keys", "create", "--name", "agent"])).key as string;
    const list = modern(0, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("notes"), list.body, list.headers)).status, 200);
    const workers: Parameters<typeof startLoad>[0] = {};
    for (const c of [0, 1, 2, 3]) workers[`c${c}`] = (n) => writeCall(gw, key, `c${c}-${n}`, n);
    const load = startLoad(workers, { stopOnNetworkError: true });
    await waitFor("calls reaching the upstream", () => received(d.calls).length > 150, { timeoutMs: 30_000 });
    gw.proc.kill("SIGKILL");
    await load.stop();
    await new Promise((r) => (alive(gw) ? gw.proc.once("exit", r) : r(null)));
    await sleep(200); // the upstream child may still log a call the dead gateway had forwarded

    const forwarded = received(d.calls);
    const audited = await auditedTags(pgUrl ?? sqlite);
    const missing = forwarded.filter((tag) => !audited.has(tag));
    t.diagnostic(
      `${pgUrl ? "PostgreSQL" : "SQLite"}: ${forwarded.length} calls reached the upstream before SIGKILL, ${forwarded.length - missing.length} audited, ${load.answers.filter((a) => a.status === 200).length} answered 200`,
    );
    assert.deepEqual(
      missing,
      [],
      `${missing.length} of ${forwarded.length} forwarded calls have no audit record`,
    );
    const verify = await runCli(["audit", "verify", "--json", "--config", gw.configFile], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
  } finally {
    if (alive(gw)) gw.proc.kill("SIGKILL");
  }
}
