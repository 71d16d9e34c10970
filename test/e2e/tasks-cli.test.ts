/**
 * `portcullis tasks start|list|show|end` and `portcullis audit search --task`, as an operator
 * uses them against a running gateway under the default policy pack: a task for an API key
 * owner, limited to one tool, prints its token once; the token works for that tool and no
 * other; the task is listed, shown and ended (its token refused from the next request); asking
 * for more than the key has, or for a write-tier tool with a key, is refused (exit 1, the
 * OAuth error and the reason); malformed flags exit 2 naming the flag; and the task's whole
 * history — created, every call, ended — is one `audit search --task`, every call record
 * naming the task and the actor.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { openStore } from "../../src/store/open.js";
import { storeOf } from "../helpers/audit.js";
import { auditRecords } from "../helpers/auditRecords.js";
import {
  createKey,
  DEFAULT_POLICY_PACK,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { waitFor } from "../helpers/wait.js";

const demo = { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] };

type Json = Record<string, unknown>;

describe("portcullis tasks (CLI)", () => {
  let gw: RunningGateway;
  let keyId: string;
  let key: string;
  let rpcId = 1;

  /** `portcullis <args> --config <gateway's> [--json]`: exit code, parsed stdout (if JSON), stderr. */
  const cli = async (args: string[], json = true) => {
    const r = await runCli([...args, "--config", gw.configFile, ...(json ? ["--json"] : [])]);
    let out: unknown = null;
    try {
      out = JSON.parse(r.stdout);
    } catch {
      // human output, or nothing
    }
    return { ...r, out: out as Json };
  };
  const call = (credential: string, method: string, params: Json = {}) => {
    const m = modern(rpcId++, method, params, credential);
    return rpc(gw.endpoint("demo"), m.body, m.headers);
  };
  const start = (owner: string, servers: string, extra: string[] = []) =>
    cli(["tasks", "start", "--owner", owner, "--servers", servers, "--purpose", "nightly triage", ...extra]);

  before(async () => {
    // Task tokens name the gateway's public URL: a fixed port makes it known to the CLI.
    gw = await startGateway({
      config: {
        environment: "dev",
        listen: { port: await freePort() },
        policy: { paths: [DEFAULT_POLICY_PACK] },
        oauth: { mode: "builtin" },
        servers: { demo },
      },
    });
    ({ id: keyId, key } = await createKey(gw, "nightly", ["--servers", "demo"]));
    // The tools' tiers come from their annotations, which the gateway learns from tools/list.
    const listed = await call(key, "tools/list");
    assert.equal(listed.status, 200, listed.text);
    await waitFor("the demo server's tools pinned in the store", async () => {
      const store = await openStore(storeOf(gw));
      try {
        return (await store.listToolPins({ server: "demo" })).some((p) => p.tool === "add_note");
      } finally {
        await store.close();
      }
    });
  });
  after(async () => {
    await gw?.stop();
  });

  it("start: a task for an API key owner limited to one tool; the token works for that tool only; list, show, end", async () => {
    const before = Date.now();
    const started = await start(`key:${keyId}`, "demo:get_time", ["--ttl", "15m", "--actor", "agent-7"]);
    assert.equal(started.code, 0, started.stderr);
    const {
      task_id: taskId,
      token,
      expires_at: expiresAt,
    } = started.out as {
      task_id: string;
      token: string;
      expires_at: string;
    };
    assert.match(taskId, /^tsk_/);
    assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    const ttl = Date.parse(expiresAt) - before;
    assert.ok(ttl > 14 * 60_000 && ttl <= 15 * 60_000 + 5_000, `expires in ${ttl} ms`);
    assert.deepEqual(started.out.grants, ["demo:get_time"]);
    assert.deepEqual(started.out.actor, ["agent-7"]);

    const ok = await call(token, "tools/call", { name: "get_time", arguments: {} });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.error, undefined, ok.text);
    const other = await call(token, "tools/call", { name: "echo", arguments: { text: "hi" } });
    assert.ok(other.json.error, `echo is in the key's scopes but not the task's: ${other.text}`);
    assert.equal(other.json.result, undefined);

    const listed = await cli(["tasks", "list"]);
    assert.equal(listed.code, 0, listed.stderr);
    const mine = (listed.out as unknown as Json[]).find((t) => t.id === taskId);
    assert.ok(mine, listed.stdout);
    assert.equal(mine.status, "live");
    assert.equal(mine.owner, `key:${keyId}`);
    assert.equal(JSON.stringify(listed.out).includes(token), false, "list never shows the token");
    const human = await cli(["tasks", "list"], false);
    assert.match(
      human.stdout,
      new RegExp(`^${taskId}\\s+live\\s+key:${keyId}\\s+agent-7\\s+demo:get_time`, "m"),
    );

    const shown = await cli(["tasks", "show", taskId]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.out.purpose, "nightly triage");
    assert.equal(shown.out.expiresAt, expiresAt);
    assert.equal(shown.stdout.includes(token), false, "show never shows the token");

    const ended = await cli(["tasks", "end", taskId]);
    assert.equal(ended.code, 0, ended.stderr);
    assert.equal(ended.out.status, "ended");
    assert.equal(ended.out.alreadyEnded, false);
    assert.match(ended.out.endedBy as string, /^operator:/);
    const after = await call(token, "tools/call", { name: "get_time", arguments: {} });
    assert.equal(after.status, 401, `refused from the next request: ${after.text}`);

    const again = await cli(["tasks", "end", taskId]);
    assert.equal(again.code, 0);
    assert.equal(again.out.alreadyEnded, true);
    assert.equal(
      (await cli(["tasks", "list"])).stdout.includes(taskId),
      false,
      "an ended task is not listed as live",
    );
    assert.equal((await cli(["tasks", "list", "--all"])).stdout.includes(taskId), true);

    // The whole history: created, both calls (with the task and the actor), ended.
    const history = await waitFor("the task's call records", async () => {
      const r = await cli(["audit", "search", "--task", taskId]);
      const lines = r.stdout.trim().split("\n").filter(Boolean);
      return lines.length >= 4 && lines.map((l) => JSON.parse(l) as Json);
    });
    assert.deepEqual(
      history.map((r) => [r.rpcMethod, r.tool, r.decision]),
      [
        ["tasks/mint", null, "allow"],
        ["tools/call", "get_time", "allow"],
        ["tools/call", "echo", "deny"],
        ["tasks/end", null, "allow"],
      ],
    );
    for (const r of history) assert.equal(r.taskId, taskId);
    for (const r of history.slice(0, 3)) assert.deepEqual(r.actor, ["agent-7"], JSON.stringify(r));
    assert.match((history[0]?.detail as Json).operator as string, /^operator:/, "who ran tasks start");
    const table = await cli(["audit", "search", "--task", taskId], false);
    assert.match(table.stdout, /^at\s+decision\s+principal\s+actor\s+target\s+reason$/m);
    assert.match(table.stdout, /allow\s+key:\S+\s+agent-7\s+demo get_time/);

    // Every request record the task's token made names the task and the actor.
    const calls = (await auditRecords(gw)).filter((r) => r.method === "task");
    assert.ok(calls.length >= 2);
    for (const r of calls) {
      assert.equal(r.detail?.task, taskId, JSON.stringify(r));
      assert.deepEqual(r.detail?.actor, ["agent-7"]);
    }
    const verified = await runCli(["audit", "verify", "--config", gw.configFile]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });

  it("asking for more than the key's scopes is refused: exit 1, invalid_scope and the reason", async () => {
    const { id: narrow } = await createKey(gw, "narrow", ["--servers", "demo:get_time"]);
    const r = await start(`key:${narrow}`, "demo:search_notes");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.out.error, "invalid_scope");
    assert.match(r.out.reason as string, /demo:search_notes.*beyond the owner's scopes/);
    assert.match(r.out.decision_id as string, /^tsk-/);
    assert.match(r.stderr, /task refused: invalid_scope/);
    const human = await start(`key:${narrow}`, "demo:search_notes");
    assert.equal(human.code, 1);
  });

  it("an API key may only mint read-tier tasks: a write-tier tool is refused by the default pack", async () => {
    const r = await start(`key:${keyId}`, "demo:add_note");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.out.error, "access_denied");
    assert.match(r.out.reason as string, /api-keys-mint-read-tier-tasks-only/);
    const record = await waitFor("the refusal's record", async () =>
      (await auditRecords(gw)).find((x) => x.decisionId === r.out.decision_id),
    );
    assert.equal(record.decision, "deny");
    assert.deepEqual(record.ruleIds, ["api-keys-mint-read-tier-tasks-only"]);
  });

  it("a revoked key owns no task: exit 1, access_denied", async () => {
    const { id: gone } = await createKey(gw, "gone", ["--servers", "demo"]);
    await gw.cli(["keys", "revoke", gone]);
    const r = await start(`key:${gone}`, "demo:get_time");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.out.error, "access_denied");
    assert.match(r.out.reason as string, /revoked/);
  });

  it("malformed flags exit 2 naming the flag", async () => {
    const cases: [string[], RegExp][] = [
      [["--ttl", "15x"], /--ttl '15x': use a duration such as 90s, 15m or 1h/],
      [["--ttl", "0m"], /--ttl '0m'/],
      [["--budget", "0"], /--budget '0': a whole number of calls above 0/],
      [["--budget", "many"], /--budget 'many'/],
      [["--actor", " "], /--actor/],
    ];
    for (const [extra, message] of cases) {
      const r = await start(`key:${keyId}`, "demo:get_time", extra);
      assert.equal(r.code, 2, `${extra.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.out.error, "usage");
    }
    const servers: [string, RegExp][] = [
      ["nope", /--servers: 'nope' is not a configured server/],
      ["Demo Server", /--servers: 'Demo Server' is not a scope/],
      ["*", /--servers: '\*' is not allowed for a task/],
      [",", /--servers: name at least one server/],
    ];
    for (const [value, message] of servers) {
      const r = await start(`key:${keyId}`, value);
      assert.equal(r.code, 2, `${value}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const owners: [string, RegExp][] = [
      ["key:NoSuchKey000", /--owner key:NoSuchKey000: no API key with id NoSuchKey000/],
      ["alice", /--owner 'alice': name the owner as key:<key id>, user:<username>/],
      ["user:nobody", /--owner user:nobody: no user named nobody/],
      ["client:nobody", /--owner client:nobody: no machine client nobody/],
      ["spiffe://Example.org/x?y", /not a SPIFFE ID/],
    ];
    for (const [owner, message] of owners) {
      const r = await start(owner, "demo:get_time");
      assert.equal(r.code, 2, `${owner}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const missing = await cli(["tasks", "start", "--owner", `key:${keyId}`, "--servers", "demo"]);
    assert.equal(missing.code, 2, "--purpose is required");
    assert.match(missing.stderr, /--purpose/);
    const unknown = await cli(["tasks", "show", "tsk_nope"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no task with id tsk_nope/);
  });

  it("a person named user:<username> owns a task as their OAuth principal, read-tier only when an operator mints it", async () => {
    await gw.cli(["users", "add", "alice", "--groups", "staff"]);
    const r = await start("user:alice", "demo:get_time", ["--actor", "agent-7"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((r.out.owner as string).startsWith(`oauth:${gw.url}#`), String(r.out.owner));
    const ok = await call(r.out.token as string, "tools/call", { name: "get_time", arguments: {} });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.error, undefined, ok.text);
    const write = await start("user:alice", "demo:add_note");
    assert.equal(write.code, 1, "the person granted no writing scope here");
    assert.equal(write.out.error, "access_denied");
    await gw.cli(["users", "disable", "alice"]);
    const disabled = await start("user:alice", "demo:get_time");
    assert.equal(disabled.code, 1);
    assert.match(disabled.out.reason as string, /alice is disabled/);
  });

  it("a workload named by its SPIFFE ID owns a read-tier task", async () => {
    const r = await start("spiffe://example.org/ci/nightly", "demo:get_time", [
      "--ttl",
      "90s",
      "--budget",
      "3",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out.owner, "spiffe://example.org/ci/nightly");
    assert.equal(r.out.budget, 3);
    const ok = await call(r.out.token as string, "tools/call", { name: "get_time", arguments: {} });
    assert.equal(ok.status, 200, ok.text);
    const shown = await cli(["tasks", "show", r.out.task_id as string]);
    assert.equal(shown.out.ownerKind, "workload");
  });
});
