/**
 * `portcullis doctor`: a healthy setup (after `portcullis init`, gateway running) is all ok
 * and exits 0; a missing stdio command fails and a world-readable secret file warns, each
 * with its fix, and the exit is 1; OAuth metadata that names another address than the
 * configured public URL fails; the store's state is read without migrating it.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { startHttpUpstream } from "../fixtures/http-upstream.js";
import {
  cleanup,
  DEMO_SERVER,
  type RunningGateway,
  runCli,
  startGatewayWithConfigFile,
  tempDir,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

interface Check {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  summary: { ok: number; warn: number; fail: number };
  checks: Check[];
}

async function doctor(args: string[]): Promise<{ report: Report; code: number; stderr: string }> {
  const r = await runCli(["doctor", ...args, "--json"]);
  return { report: JSON.parse(r.stdout) as Report, code: r.code, stderr: r.stderr };
}

const byName = (report: Report, name: string) => report.checks.find((c) => c.check === name);

/** On Node 20 the Node check warns (end of life April 2026); everything else must be ok. */
function notOk(report: Report): Check[] {
  return report.checks.filter((c) => c.status !== "ok" && !(c.check === "node" && c.status === "warn"));
}

describe("portcullis doctor", () => {
  let dir: string;
  let file: string;
  let gw: RunningGateway;

  before(async () => {
    dir = tempDir("portcullis-doctor-");
    const init = await runCli(["init", "--yes", "--dir", dir, "--port", String(await freePort()), "--json"]);
    assert.equal(init.code, 0, init.stderr);
    file = join(dir, "portcullis.yaml");
    gw = await startGatewayWithConfigFile(file);
  });
  after(async () => {
    await gw.stop();
    cleanup(dir);
  });

  it("a healthy setup: every check ok, exit 0, and the --json shape", async () => {
    const { report, code, stderr } = await doctor(["--config", file]);
    assert.deepEqual(notOk(report), [], stderr);
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    assert.equal(report.summary.fail, 0);
    assert.equal(report.summary.ok + report.summary.warn, report.checks.length);
    for (const c of report.checks) {
      assert.equal(typeof c.check, "string");
      assert.ok(["ok", "warn", "fail"].includes(c.status));
      assert.equal(typeof c.detail, "string");
    }
    assert.match(byName(report, "config")?.detail ?? "", new RegExp(`loaded from ${file}`));
    assert.equal(byName(report, "store.migrations")?.detail, "schema current");
    assert.match(
      byName(report, "upstream:demo")?.detail ?? "",
      /MCP initialize and tools\/list answered \(\d+ tools\)/,
    );
    assert.match(
      byName(report, "oauth:demo")?.detail ?? "",
      /oauth-protected-resource\/mcp\/demo → http:\/\/127\.0\.0\.1:\d+$/,
    );
    assert.equal(byName(report, "secret:server")?.status, "ok");
  });

  it("the human form is one line per check with its status, and a summary", async () => {
    const r = await runCli(["doctor", "--config", file, "--no-probe"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^status\s+check\s+detail\s+fix$/);
    assert.ok(
      lines.some((l) => /^ok\s+upstream:demo\s+stdio: \//.test(l)),
      r.stdout,
    );
    assert.match(lines.at(-1) ?? "", /^\d+ ok, \d+ warn, 0 fail$/);
  });

  it("a missing stdio command fails and a world-readable secret file warns, each with its fix; exit 1", async () => {
    const bad = tempDir("portcullis-doctor-bad-");
    try {
      const secretFile = join(bad, "server-secret.txt");
      writeFileSync(secretFile, `${"s".repeat(48)}\n`);
      chmodSync(secretFile, 0o644);
      const badFile = join(bad, "portcullis.yaml");
      writeFileSync(
        badFile,
        stringify({
          dataDir: join(bad, "data"),
          serverSecret: { file: secretFile },
          servers: {
            demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
            ghost: { transport: "stdio", command: "portcullis-no-such-mcp-server", args: [] },
          },
        }),
      );
      const { report, code } = await doctor(["--config", badFile]);
      assert.equal(code, 1);
      assert.equal(report.ok, false);
      const ghost = byName(report, "upstream:ghost");
      assert.equal(ghost?.status, "fail");
      assert.match(ghost?.detail ?? "", /'portcullis-no-such-mcp-server' not found on PATH/);
      assert.match(ghost?.fix ?? "", /servers\.ghost\.command/);
      const secret = byName(report, "secret:serverSecret");
      assert.equal(secret?.status, "warn");
      assert.match(secret?.detail ?? "", /readable by every user \(mode 644\)/);
      assert.equal(secret?.fix, `chmod 600 ${secretFile}`);
      assert.equal(byName(report, "upstream:demo")?.status, "ok");
      // No store yet: doctor says so, and does not create one.
      assert.equal(byName(report, "store")?.status, "warn");
      assert.ok(!existsSync(join(bad, "data", "portcullis.db")));

      chmodSync(secretFile, 0o600);
      const fixed = await doctor(["--config", badFile]);
      assert.equal(byName(fixed.report, "secret:serverSecret")?.status, "ok");
    } finally {
      cleanup(bad);
    }
  });

  it("OAuth metadata that names another address than the configured public URL fails with the fix", async () => {
    const other = tempDir("portcullis-doctor-url-");
    try {
      // The same gateway reached as localhost: what a client configured with publicUrl sees.
      const port = new URL(gw.url).port;
      const otherFile = join(other, "portcullis.yaml");
      writeFileSync(
        otherFile,
        stringify({
          publicUrl: `http://localhost:${port}`,
          listen: { port: Number(port) },
          dataDir: join(dir, ".portcullis"),
          oauth: { mode: "builtin" },
          servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
        }),
      );
      const { report, code } = await doctor(["--config", otherFile, "--no-probe"]);
      assert.equal(code, 1);
      const oauth = byName(report, "oauth:demo");
      assert.equal(oauth?.status, "fail");
      assert.match(
        oauth?.detail ?? "",
        new RegExp(
          `resource is http://127\\.0\\.0\\.1:${port}/mcp/demo, clients expect http://localhost:${port}/mcp/demo`,
        ),
      );
      assert.match(oauth?.fix ?? "", /publicUrl/);
    } finally {
      cleanup(other);
    }
  });

  it("HTTP upstreams: a live one answers MCP initialize with its configured header, a dead one fails; the clock is compared with its Date", async () => {
    const upstream = await startHttpUpstream();
    const other = tempDir("portcullis-doctor-http-");
    try {
      const f = join(other, "portcullis.yaml");
      writeFileSync(
        f,
        stringify({
          dataDir: join(other, "data"),
          servers: {
            live: { transport: "http", url: upstream.url, headers: { Authorization: { env: "LIVE_AUTH" } } },
            dead: { transport: "http", url: `http://127.0.0.1:${await freePort()}/mcp` },
          },
        }),
      );
      const r = await runCli(["doctor", "--config", f, "--json", "--timeout", "5"], {
        LIVE_AUTH: "Bearer upstream-secret",
      });
      const report = JSON.parse(r.stdout) as Report;
      assert.equal(r.code, 1);
      assert.match(
        byName(report, "upstream:live")?.detail ?? "",
        /http: MCP initialize and tools\/list answered \(\d+ tools\)/,
      );
      assert.ok(upstream.requests.some((q) => q.headers.authorization === "Bearer upstream-secret"));
      const dead = byName(report, "upstream:dead");
      assert.equal(dead?.status, "fail");
      assert.match(dead?.detail ?? "", /ECONNREFUSED/);
      assert.match(
        byName(report, "clock")?.detail ?? "",
        /within \d+ s of the upstream http:\/\/127\.0\.0\.1/,
      );
      assert.ok(!r.stdout.includes("upstream-secret"), "the header value is never printed");
    } finally {
      cleanup(other);
      await upstream.close();
    }
  });

  it("a config that does not load fails the config check (exit 1), naming the field", async () => {
    const other = tempDir("portcullis-doctor-cfg-");
    try {
      const f = join(other, "portcullis.yaml");
      writeFileSync(f, stringify({ servers: { demo: { transport: "stdio", comand: "x" } } }));
      const { report, code } = await doctor(["--config", f]);
      assert.equal(code, 1);
      assert.equal(byName(report, "config")?.status, "fail");
      assert.match(byName(report, "config")?.detail ?? "", /servers\.demo/);
    } finally {
      cleanup(other);
    }
  });
});

describe("portcullis doctor on PostgreSQL", async () => {
  const skip = await postgresSkip();
  it("reads pending migrations without applying them, and compares the clock with the database's", {
    skip,
  }, async () => {
    const db = await createTestDatabase();
    try {
      const before = await doctor(["--store", db.url, "--no-probe"]);
      const migrations = byName(before.report, "store.migrations");
      assert.equal(migrations?.status, "warn");
      assert.match(migrations?.detail ?? "", /migration\(s\) pending: 001_initial/);
      assert.match(byName(before.report, "clock")?.detail ?? "", /within \d+ s of the PostgreSQL store/);
      // Doctor did not migrate: it still sees them pending.
      const again = await doctor(["--store", db.url, "--no-probe"]);
      assert.equal(byName(again.report, "store.migrations")?.status, "warn");
    } finally {
      await db.drop();
    }
  });
});
