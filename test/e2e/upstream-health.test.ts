/**
 * Upstream health (issue 12 item 4): a stdio server that crashes has its last stderr lines,
 * secrets masked, in the gateway's error log and in `portcullis servers status`; a stdio
 * command that cannot be run and an HTTP upstream that does not answer are reported at start
 * (a warning naming the server and the fix, without refusing to start); `GET /status` shows
 * each server's state to anyone but never an upstream's error text or stderr, and `/readyz`
 * stays about the gateway itself.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { startHttpUpstream } from "../fixtures/http-upstream.js";
import { createKey, modern, type RunningGateway, rpc, runCli, startGateway } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { waitFor } from "../helpers/wait.js";

const CRASHING = resolve("dist/test/fixtures/crashing-server.js");
const STDERR_CRASH = resolve("dist/test/fixtures/stderr-crash-server.js");
/** A GitHub personal access token as a server might print it in a failure message. */
const TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
const FAILURE = "fatal: cannot reach the database at 127.0.0.1:5433 (ECONNREFUSED)";

interface ServerView {
  name: string;
  transport: string;
  target: string;
  state: string;
  lastError: string | null;
  stderr: string[];
}

describe("upstream health", () => {
  let gw: RunningGateway;
  let key: string;
  let deadPort: number;

  before(async () => {
    deadPort = await freePort(); // nothing listens there
    gw = await startGateway({
      config: {
        environment: "test",
        servers: {
          working: { transport: "stdio", command: process.execPath, args: [CRASHING] },
          broken: {
            transport: "stdio",
            command: process.execPath,
            args: [STDERR_CRASH, "starting the broken server", FAILURE],
            env: { GITHUB_TOKEN: TOKEN },
          },
          missing: { transport: "stdio", command: "portcullis-no-such-mcp-server" },
          unreachable: { transport: "http", url: `http://127.0.0.1:${deadPort}/mcp?token=s3cret-in-query` },
        },
      },
    });
    ({ key } = await createKey(gw, "health"));
  });
  after(() => gw?.stop());

  const call = (server: string, method = "tools/list") => {
    const m = modern(1, method, {}, key);
    return rpc(gw.endpoint(server), m.body, m.headers);
  };
  const status = async () => (await gw.cli(["servers", "status"])) as unknown as ServerView[];
  const byName = (views: ServerView[], name: string) => views.find((v) => v.name === name) as ServerView;

  it("logs a crashing stdio server's last stderr lines at error level, with the token masked", async () => {
    const res = await call("broken");
    assert.equal(res.status, 502, res.text);
    const entry = await waitFor("the crash's error log line", () =>
      gw.logs.find((l) => l.level === 50 && l.server === "broken" && Array.isArray(l.stderr)),
    );
    const text = JSON.stringify(entry);
    assert.match(text, /cannot reach the database at 127\.0\.0\.1:5433/);
    assert.match(String(entry.msg), /last stderr lines/);
    assert.match(String(entry.error), /exited with code 1/);
    assert.ok(!text.includes(TOKEN), `the token reached the log: ${text}`);
    assert.match(text, /GITHUB_TOKEN is \[secret\]/);
  });

  it("never writes a token a server printed to any log line", async () => {
    await call("broken");
    await waitFor(
      "a second crash report",
      () => gw.logs.filter((l) => l.server === "broken" && l.level === 50).length >= 2,
    );
    const all = JSON.stringify(gw.logs) + gw.stderr.join("\n");
    assert.ok(!all.includes(TOKEN));
  });

  it("warns at start, before any call, about a command that is not on PATH and an HTTP upstream that does not answer", async () => {
    const missing = await waitFor("the missing command's warning", () =>
      gw.logs.find((l) => l.level === 40 && l.server === "missing"),
    );
    assert.match(String(missing.msg), /portcullis-no-such-mcp-server' is not on PATH/);
    assert.match(String(missing.msg), /set command to its absolute path/);
    const unreachable = await waitFor("the unreachable upstream's warning", () =>
      gw.logs.find((l) => l.level === 40 && l.server === "unreachable"),
    );
    assert.match(
      String(unreachable.msg),
      new RegExp(`servers\\.unreachable\\.url http://127\\.0\\.0\\.1:${deadPort}/mcp does not answer`),
    );
    assert.match(String(unreachable.msg), /start the server, or fix the URL/);
    assert.ok(!String(unreachable.msg).includes("s3cret-in-query"), "no query string (it may hold a secret)");
    // Warned, not refused: the gateway serves the servers that work.
    assert.equal((await call("working")).status, 200);
  });

  it("logs a stdio server that fails to start at error level, naming the fix", async () => {
    assert.equal((await call("missing")).status, 502);
    const entry = await waitFor("the failed start's error log line", () =>
      gw.logs.find((l) => l.level === 50 && l.server === "missing"),
    );
    assert.match(
      String(entry.msg),
      /stdio upstream missing failed: servers\.missing\.command 'portcullis-no-such-mcp-server' is not on PATH/,
    );
    assert.match(String(entry.msg), /it wrote nothing to stderr/);
  });

  it("shows a crashed stdio server down with its last stderr lines, and a working one up, in servers status", async () => {
    assert.equal((await call("working")).status, 200);
    await call("broken");
    const views = await waitFor("both servers' health in the store", async () => {
      const v = await status();
      return byName(v, "working").state === "up" && byName(v, "broken").stderr.length > 0 && v;
    });
    const broken = byName(views, "broken");
    assert.equal(broken.state, "down");
    assert.equal(broken.transport, "stdio");
    assert.ok(broken.stderr.includes(FAILURE), JSON.stringify(broken.stderr));
    assert.ok(broken.stderr.includes("GITHUB_TOKEN is [secret]"), JSON.stringify(broken.stderr));
    assert.ok(!JSON.stringify(views).includes(TOKEN));
    const working = byName(views, "working");
    assert.equal(working.state, "up");
    assert.equal(working.lastError, null);
    assert.equal(byName(views, "missing").state, "down");
    assert.match(String(byName(views, "missing").lastError), /not on PATH/);
    assert.equal(byName(views, "unreachable").state, "down");
    assert.equal(byName(views, "unreachable").target, `http://127.0.0.1:${deadPort}/mcp`);

    const human = await runCli(["servers", "status", "--config", gw.configFile]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^name\s+transport\s+target\s+state/m);
    assert.match(human.stdout, /^working\s+stdio\s+.*\s+up\s/m);
    assert.match(human.stdout, /^broken\s+stdio\s+.*\s+down\s/m);
    assert.match(
      human.stdout,
      /broken: last stderr lines \(masked\)\n(.*\n)* {2}\| fatal: cannot reach the database/,
    );
  });

  it("lists the configured servers with their transport and target", async () => {
    const list = (await gw.cli(["servers", "list"])) as unknown as ServerView[];
    assert.deepEqual(
      list.map((s) => [s.name, s.transport]),
      [
        ["working", "stdio"],
        ["broken", "stdio"],
        ["missing", "stdio"],
        ["unreachable", "http"],
      ],
    );
    assert.equal(byName(list, "missing").target, "portcullis-no-such-mcp-server");
  });

  it("status endpoint tells an unauthenticated caller each server's state, never an upstream's error or stderr", async () => {
    await call("broken");
    const res = await waitFor("broken reported down", async () => {
      const r = await fetch(`${gw.url}/status`);
      const body = (await r.json()) as { servers: Record<string, { state: string }> };
      return body.servers.broken?.state === "down" && { r, body };
    });
    assert.equal(res.r.status, 200);
    assert.deepEqual(Object.keys(res.body.servers).sort(), ["broken", "missing", "unreachable", "working"]);
    for (const s of Object.values(res.body.servers))
      assert.deepEqual(Object.keys(s).sort(), ["since", "state"]);
    const text = JSON.stringify(res.body);
    assert.ok(!text.includes("database") && !text.includes("PATH") && !text.includes(TOKEN));
  });

  it("keeps /readyz about the gateway itself: ready while upstreams are down", async () => {
    const r = await fetch(`${gw.url}/readyz`);
    assert.equal(r.status, 200);
  });

  it("marks an HTTP upstream down from a failed call, and up again from real traffic once it answers", async () => {
    const failed = await call("unreachable");
    assert.equal(failed.status, 502, failed.text);
    await waitFor("the failed call in the health report", async () => {
      const v = byName(await status(), "unreachable");
      return (
        v.state === "down" && /^upstream unreachable unreachable: .*ECONNREFUSED/.test(String(v.lastError))
      );
    });
    const upstream = await startHttpUpstream({ port: deadPort });
    try {
      const m = modern(9, "tools/list", {}, key);
      const res = await rpc(`${gw.endpoint("unreachable")}`, m.body, m.headers);
      assert.equal(res.status, 200, res.text);
      const view = await waitFor("unreachable reported up", async () => {
        const v = byName(await status(), "unreachable");
        return v.state === "up" && v;
      });
      assert.match(String(view.lastError), /ECONNREFUSED/, "the last error stays for the record");
    } finally {
      await upstream.close();
    }
  });
});

describe("upstream stderr at debug level", () => {
  let gw: RunningGateway;
  let key: string;
  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        log: { level: "debug" },
        servers: {
          broken: {
            transport: "stdio",
            command: process.execPath,
            args: [STDERR_CRASH, FAILURE],
            env: { GITHUB_TOKEN: TOKEN },
          },
        },
      },
    });
    ({ key } = await createKey(gw, "debug"));
  });
  after(() => gw?.stop());

  it("logs each stderr line as it comes, masked like the crash report", async () => {
    const m = modern(1, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("broken"), m.body, m.headers)).status, 502);
    await waitFor(
      "both stderr lines at debug",
      () => gw.logs.filter((l) => l.level === 20 && l.msg === "upstream stderr").length >= 2 || undefined,
    );
    const lines = gw.logs.filter((l) => l.level === 20 && l.msg === "upstream stderr").map((l) => l.stderr);
    assert.ok(lines.includes(FAILURE));
    assert.ok(lines.includes("GITHUB_TOKEN is [secret]"), JSON.stringify(lines));
    assert.ok(!JSON.stringify(gw.logs).includes(TOKEN));
  });
});
