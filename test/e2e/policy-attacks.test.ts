/**
 * Attacks on request-time authorization, each against a running gateway and a real stdio
 * upstream that writes down every tools/call it receives, so "refused" always also means
 * "the upstream never ran it", and "allowed" means "the upstream ran exactly what was
 * authorized".
 *
 * The policy under attack allows everything except `delete_note` (a deny rule), which is
 * the shape attackers go for: one forbidden tool beside many permitted ones.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { openStore } from "../../src/store/open.js";
import type { StoredAuditRecord } from "../../src/store/types.js";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import {
  cleanup,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";

const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const TOOLS: ToolFile = {
  tools: [
    {
      name: "search_notes",
      description: "Searches notes.",
      annotations: { readOnlyHint: true, destructiveHint: false, openWorldHint: false },
    },
    {
      name: "delete_note",
      description: "Deletes a note.",
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
  ],
};

const DENY_DELETE_POLICY = {
  rules: [
    { id: "allow-everything", effect: "allow" },
    {
      id: "never-delete-notes",
      description: "Notes are never deleted through the gateway.",
      effect: "deny",
      match: { tools: ["delete_note"] },
    },
  ],
};

type Response = Awaited<ReturnType<typeof rpc>>;
type RpcError = { code: number; message: string; data?: { decisionId?: string } };

/** A header value as MCP 2026-07-28 carries non-ASCII names: the `=?base64?…?=` sentinel form. */
function headerValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

let rpcId = 1;

/** A 2026-07-28 tools/call exactly as a conforming client sends it (Mcp-Name encoded when needed). */
function toolCall(key: string, name: string, args: Record<string, unknown> = {}) {
  const { body, headers } = modern(rpcId++, "tools/call", { name, arguments: args }, key);
  headers["mcp-name"] = headerValue(name);
  return { body, headers };
}

function errorOf(res: Response): RpcError {
  const error = res.json.error as RpcError | undefined;
  assert.ok(error, `expected a JSON-RPC error, got ${res.status} ${res.text}`);
  return error;
}

describe("attacks on request-time policy", () => {
  let dir: string;
  let gw: RunningGateway;
  let key: string;
  let callsFile: string;
  let seenCalls = 0;

  /** tools/call requests that reached the upstream since the last look. */
  const newUpstreamCalls = (): string[] => {
    const lines = existsSync(callsFile) ? readFileSync(callsFile, "utf8").split("\n").filter(Boolean) : [];
    const fresh = lines.slice(seenCalls).map((l) => (JSON.parse(l) as { name: string }).name);
    seenCalls = lines.length;
    return fresh;
  };

  const send = (body: unknown, headers: Record<string, string>) => rpc(gw.endpoint("notes"), body, headers);

  /** The audit record of a decision (group-committed within ~50 ms). */
  const auditOf = async (decisionId: string): Promise<StoredAuditRecord> => {
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      for (const until = Date.now() + 5_000; Date.now() < until; await sleep(50)) {
        const [record] = await store.listAudit({ decisionId });
        if (record) return record;
      }
    } finally {
      await store.close();
    }
    assert.fail(`no audit record for decision ${decisionId}`);
  };

  /** Asserts the policy refused the request (-32040) and returns the audited decision. */
  const deniedByPolicy = async (res: Response, what: string): Promise<StoredAuditRecord> => {
    assert.equal(res.status, 200, `${what}: ${res.text}`);
    const error = errorOf(res);
    assert.equal(error.code, -32040, `${what}: ${res.text}`);
    assert.ok(error.data?.decisionId, what);
    const record = await auditOf(error.data.decisionId);
    assert.equal(record.decision, "deny", what);
    return record;
  };

  /** The most recent tools/call decision in the audit log. */
  const latestToolCall = async (): Promise<StoredAuditRecord> => {
    await sleep(200);
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      const latest = (await store.listAudit({ limit: 50 }))
        .filter((r) => r.rpcMethod === "tools/call")
        .sort((a, b) => b.seq - a.seq)[0];
      assert.ok(latest, "an audit record for the call");
      return latest;
    } finally {
      await store.close();
    }
  };

  before(async () => {
    dir = tempDir("portcullis-attacks-");
    const toolsFile = join(dir, "tools.json");
    callsFile = join(dir, "calls.jsonl");
    const policyFile = join(dir, "policy.yaml");
    writeFileSync(toolsFile, JSON.stringify(TOOLS));
    writeFileSync(policyFile, stringify(DENY_DELETE_POLICY));
    gw = await startGateway({
      config: {
        policy: { paths: [policyFile] },
        servers: {
          notes: {
            transport: "stdio",
            command: process.execPath,
            args: [MUTABLE_SERVER, toolsFile, "--calls", callsFile],
          },
        },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "attacker"])).key as string;
    const list = modern(rpcId++, "tools/list", {}, key);
    const listed = await send(list.body, list.headers);
    assert.equal(listed.status, 200, listed.text);
  });
  after(async () => {
    await gw?.stop();
    if (dir) cleanup(dir);
  });

  it("a tool hidden from the list cannot be called directly", async () => {
    const list = modern(rpcId++, "tools/list", {}, key);
    const res = await send(list.body, list.headers);
    const names = (res.json.result as { tools: { name: string }[] }).tools.map((t) => t.name);
    assert.deepEqual(names, ["search_notes"], "delete_note is hidden");

    const direct = toolCall(key, "delete_note", { id: "n1" });
    const record = await deniedByPolicy(await send(direct.body, direct.headers), "direct call");
    assert.deepEqual(record.ruleIds, ["never-delete-notes"]);
    assert.deepEqual(newUpstreamCalls(), [], "the upstream never saw the call");

    const visible = toolCall(key, "search_notes", { query: "x" });
    const ok = await send(visible.body, visible.headers);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(newUpstreamCalls(), ["search_notes"], "control: an allowed call does reach it");
  });

  it("an Mcp-Name header that disagrees with the body cannot change the decision (-32020)", async () => {
    const attempts: Array<[string, { body: Record<string, unknown>; headers: Record<string, string> }]> = [];
    // The denied tool in the body, an allowed one in the header (plain and base64-encoded).
    const plain = toolCall(key, "delete_note", { id: "n1" });
    plain.headers["mcp-name"] = "search_notes";
    attempts.push(["Mcp-Name names an allowed tool", plain]);
    const encoded = toolCall(key, "delete_note", { id: "n1" });
    encoded.headers["mcp-name"] = headerValue("search_notes\u200b");
    attempts.push(["base64 Mcp-Name names another tool", encoded]);
    // The method header claims a list, which is always allowed.
    const method = toolCall(key, "delete_note", { id: "n1" });
    method.headers["mcp-method"] = "tools/list";
    attempts.push(["Mcp-Method claims tools/list", method]);
    // A duplicated header: node joins the values; either way it is not the body's name.
    const doubled = toolCall(key, "delete_note", { id: "n1" });
    doubled.headers["mcp-name"] = "search_notes, delete_note";
    attempts.push(["two Mcp-Name values", doubled]);
    for (const [what, attempt] of attempts) {
      const res = await send(attempt.body, attempt.headers);
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(errorOf(res).code, -32020, `${what}: ${res.text}`);
    }
    assert.deepEqual(newUpstreamCalls(), [], "no mismatched request reached the upstream");
  });

  it("duplicate JSON keys cannot make the gateway authorize one tool while the upstream runs another", async (t) => {
    const orders: Array<[string, string]> = [
      ["search_notes", "delete_note"],
      ["delete_note", "search_notes"],
    ];
    for (const [first, second] of orders) {
      // The Mcp-Name header either agrees with the first key (what a first-wins parser reads)
      // or with the second (what a last-wins parser reads); the body is sent byte for byte.
      for (const headerName of [first, second]) {
        const what = `"name":"${first}","name":"${second}" with Mcp-Name ${headerName}`;
        const { body, headers } = toolCall(key, "__NAME__", { id: "n1", query: "x" });
        headers["mcp-name"] = headerName;
        const raw = JSON.stringify(body).replace('"name":"__NAME__"', `"name":"${first}","name":"${second}"`);
        assert.ok(raw.includes(`"name":"${first}","name":"${second}"`));
        const res = await send(raw, headers);
        const ran = newUpstreamCalls();
        assert.ok(!ran.includes("delete_note"), `${what}: the upstream ran the denied tool`);
        if (res.status === 200 && res.json.result !== undefined) {
          // Allowed: the upstream must have run exactly the tool that was authorized.
          const record = await latestToolCall();
          assert.equal(record.decision, "allow", what);
          const audited = record.tool;
          assert.deepEqual(ran, [audited], `${what}: authorized ${audited}, upstream ran ${ran.join(",")}`);
          assert.equal(audited, "search_notes", what);
          t.diagnostic(`${what}: allowed, the upstream ran ${audited}`);
        } else {
          assert.ok(
            res.status === 400 || (res.status === 200 && res.json.error !== undefined),
            `${what}: ${res.status} ${res.text}`,
          );
          assert.deepEqual(ran, [], `${what}: refused, yet the upstream ran ${ran.join(",")}`);
          t.diagnostic(`${what}: refused with ${errorOf(res).code}`);
        }
      }
    }
  });

  it("tool names differing by case, Unicode confusables or invisible characters cannot slip past a deny rule", async () => {
    const variants: Record<string, string> = {
      "upper case": "DELETE_NOTE",
      "mixed case": "Delete_Note",
      "zero-width space": "delete_\u200bnote",
      "zero-width joiner inside a word": "del\u200dete_note",
      "soft hyphen": "delete\u00ad_note",
      "byte order mark": "\ufeffdelete_note",
      fullwidth: "\uff44\uff45\uff4c\uff45\uff54\uff45\uff3f\uff4e\uff4f\uff54\uff45",
      "fullwidth underscore only": "delete\uff3fnote",
      "Cyrillic e": "d\u0435l\u0435t\u0435_note",
      "Cyrillic o": "delete_n\u043ete",
      "Greek omicron, upper case": "DELETE_N\u039fTE",
      "mathematical bold": "\ud835\udc1d\ud835\udc1e\ud835\udc25\ud835\udc1e\ud835\udc2d\ud835\udc1e_note",
    };
    for (const [what, name] of Object.entries(variants)) {
      assert.notEqual(name, "delete_note");
      const { body, headers } = toolCall(key, name, { id: "n1" });
      const record = await deniedByPolicy(await send(body, headers), what);
      assert.deepEqual(record.ruleIds, ["never-delete-notes"], what);
      assert.equal(record.tool, name, `${what}: the audit log keeps the name as sent`);
    }
    assert.deepEqual(newUpstreamCalls(), [], "no variant reached the upstream");
  });

  it("a denied call sent as a notification (no id) cannot bypass policy", async () => {
    // JSON-RPC 2.0 §4.1: a request without an id is a notification, which a server runs
    // without replying. Only the protocol's own notifications/* may go without an id.
    const { body, headers } = toolCall(key, "delete_note", { id: "n1" });
    delete body.id;
    delete headers["mcp-name"];
    const res = await send(body, headers);
    await sleep(300); // a forwarded notification is written to the child asynchronously
    assert.deepEqual(
      newUpstreamCalls(),
      [],
      `the upstream received the denied call (${res.status} ${res.text})`,
    );
    assert.equal(res.status, 400, res.text);
    assert.equal(errorOf(res).code, -32600, res.text);
    // The protocol's own notifications still pass.
    const cancelled = modern(rpcId++, "notifications/cancelled", { requestId: 1 }, key);
    delete cancelled.body.id;
    assert.equal((await send(cancelled.body, cancelled.headers)).status, 202);
  });

  it("a batch cannot smuggle a denied call beside an allowed one", async () => {
    const allowed = toolCall(key, "search_notes", { query: "x" });
    const denied = toolCall(key, "delete_note", { id: "n1" });
    for (const batch of [
      [allowed.body, denied.body],
      [denied.body, allowed.body],
    ]) {
      // The Mcp-Name header names the allowed call, as a smuggler would send it.
      const res = await send(batch, allowed.headers);
      assert.equal(res.status, 400, res.text);
      assert.equal(errorOf(res).code, -32600, res.text);
      assert.equal(res.json.result, undefined);
    }
    assert.deepEqual(newUpstreamCalls(), [], "no part of a batch reached the upstream");
  });
});

describe("a policy with no allow rule", () => {
  let dir: string;
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    dir = tempDir("portcullis-deny-only-");
    const policyFile = join(dir, "deny-only.yaml");
    writeFileSync(
      policyFile,
      stringify({
        rules: [{ id: "never-drop-the-database", effect: "deny", match: { tools: ["drop_database"] } }],
      }),
    );
    gw = await startGateway({
      config: {
        policy: { paths: [policyFile] },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "anyone"])).key as string;
  });
  after(async () => {
    await gw?.stop();
    if (dir) cleanup(dir);
  });

  it("no request is allowed when no rule allows it", async () => {
    const requests: Array<[string, Record<string, unknown>]> = [
      ["server/discover", {}],
      ["ping", {}],
      ["tools/list", {}],
      ["tools/call", { name: "get_time", arguments: {} }],
      ["tools/call", { name: "echo", arguments: { text: "hi" } }],
      ["resources/list", {}],
      ["resources/templates/list", {}],
      ["resources/read", { uri: "notes://index" }],
      ["prompts/list", {}],
      ["prompts/get", { name: "summarize_notes", arguments: {} }],
      [
        "completion/complete",
        { ref: { type: "ref/prompt", name: "summarize_notes" }, argument: { name: "topic", value: "" } },
      ],
      ["logging/setLevel", { level: "debug" }],
      ["sampling/createMessage", {}],
      ["no/such/method", {}],
    ];
    for (const [method, params] of requests) {
      const { body, headers } = modern(rpcId++, method, params, key);
      const res = await rpc(gw.endpoint("demo"), body, headers);
      assert.equal(res.status, 200, `${method}: ${res.text}`);
      const error = errorOf(res);
      assert.equal(error.code, -32040, `${method}: ${res.text}`);
      assert.ok(error.data?.decisionId, method);
    }
    // The operator sees why: nothing allowed it (not the deny rule, which matched nothing here).
    await sleep(300);
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      const decided = (await store.listAudit({ limit: 100 })).filter((r) => r.decisionId);
      assert.equal(decided.length, requests.length);
      for (const r of decided) {
        assert.equal(r.decision, "deny");
        assert.equal(r.reason, "no rule allows this", `${r.rpcMethod}`);
        assert.deepEqual(r.ruleIds, []);
      }
    } finally {
      await store.close();
    }
  });
});
