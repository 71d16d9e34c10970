/**
 * API keys end to end, through the real CLI and a running gateway, as an operator and a
 * client with curl would see them.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { mintKey } from "../../src/authn/keyFormat.js";
import { auditRecords } from "../helpers/audit.js";
import {
  createKey,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
} from "../helpers/gateway.js";
import { jsonOf } from "../helpers/mcp.js";
import { waitFor } from "../helpers/wait.js";

const demo = { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] };

async function auditRows(gw: RunningGateway): Promise<Record<string, unknown>[]> {
  // The audit log is group-committed within ~50 ms.
  await sleep(300);
  const { openStore } = await import("../../src/store/open.js");
  const store = await openStore(`${gw.dir}/data/portcullis.db`);
  try {
    return (await store.listAudit({ limit: 500 })) as unknown as Record<string, unknown>[];
  } finally {
    await store.close();
  }
}

describe("API keys through the gateway", () => {
  let gw: RunningGateway;
  let key: string;
  let keyId: string;

  before(async () => {
    gw = await startGateway({ config: { environment: "test", servers: { demo } } });
    const created = await gw.cli(["keys", "create", "--name", "e2e"]);
    key = created.key as string;
    keyId = created.id as string;
  });
  after(() => gw.stop());

  it("lists the demo server's tools with the key", async () => {
    const { body, headers } = modern(1, "tools/list", {}, key);
    const res = await rpc(gw.endpoint("demo"), body, headers);
    assert.equal(res.status, 200, res.text);
    const tools = (res.json.result as { tools: { name: string }[] }).tools.map((t) => t.name);
    assert.ok(tools.includes("search_notes"), tools.join(","));
  });

  it("answers 401 with WWW-Authenticate and a JSON error body without a key", async () => {
    const { body, headers } = modern(2, "tools/list");
    const res = await rpc(gw.endpoint("demo"), body, headers);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((res.json.error as { code: number }).code, -32001);
  });

  it("gives the same generic 401 for malformed, unknown and tampered keys (reason only in the audit log)", async () => {
    const tampered = `${key.slice(0, -7)}${key.at(-7) === "x" ? "y" : "x"}${key.slice(-6)}`;
    const unknown = mintKey("test").key;
    for (const bad of ["nonsense", tampered, unknown]) {
      const { body, headers } = modern(3, "tools/list", {}, bad);
      const res = await rpc(gw.endpoint("demo"), body, headers);
      assert.equal(res.status, 401, bad);
      const error = res.json.error as { code: number; message: string; data: { decisionId: string } };
      // Nothing but the decision id (which finds the audit record) tells the causes apart.
      assert.deepEqual(error, {
        code: -32001,
        message: "Unauthorized",
        data: { decisionId: error.data.decisionId },
      });
      assert.match(error.data.decisionId, /^[\w-]+$/);
    }
    const reasons = (await auditRows(gw)).map((r) => r.reason);
    assert.ok(reasons.includes("malformed key"));
    assert.ok(reasons.includes("key checksum mismatch"));
    assert.ok(reasons.includes("unknown key id"));
  });

  it("refuses a key minted for another environment and audits both environment names", async () => {
    const prodKey = (await gw.cli(["keys", "create", "--name", "prod-leak", "--env", "prod"])).key as string;
    const { body, headers } = modern(4, "tools/list", {}, prodKey);
    const res = await rpc(gw.endpoint("demo"), body, headers);
    assert.equal(res.status, 401);
    const row = (await auditRows(gw)).find((r) => String(r.reason).includes("environment 'prod'"));
    assert.ok(row, "audit record for the wrong-environment key");
    assert.deepEqual(row.detail, { keyEnvironment: "prod", gatewayEnvironment: "test" });
    assert.equal(row.decision, "deny");
  });

  it("records last use and use count", async () => {
    await sleep(1500); // usage is flushed every second
    const shown = await gw.cli(["keys", "show", keyId]);
    assert.ok((shown.useCount as number) >= 1);
    assert.notEqual(shown.lastUsedAt, null);
  });

  it("scopes a key to tools: out-of-scope calls are refused and tools/list shows only the scope", async () => {
    const { key: scoped, id: scopedId } = await createKey(gw, "reader", [
      "--servers",
      "demo:search_*,demo:get_time",
    ]);
    const list = modern(5, "tools/list", {}, scoped);
    const res = await rpc(gw.endpoint("demo"), list.body, list.headers);
    const tools = (res.json.result as { tools: { name: string }[]; cacheScope?: string }).tools
      .map((t) => t.name)
      .sort();
    assert.deepEqual(tools, ["get_time", "search_notes"]);
    assert.equal((res.json.result as { cacheScope?: string }).cacheScope, "private");
    const allowed = modern(6, "tools/call", { name: "get_time", arguments: {} }, scoped);
    assert.equal((await rpc(gw.endpoint("demo"), allowed.body, allowed.headers)).status, 200);
    const denied = modern(7, "tools/call", { name: "delete_note", arguments: { id: "1" } }, scoped);
    const refused = await rpc(gw.endpoint("demo"), denied.body, denied.headers);
    assert.equal(refused.status, 200, "an out-of-scope call is the request's JSON-RPC error");
    assert.equal((refused.json.error as { code: number }).code, -32003);
    assert.equal(refused.json.id, 7);
    // An out-of-scope write leaves no trace upstream (this key's notebook, read with the
    // in-scope search_notes, stays empty) and only a deny record in the audit trail.
    const write = modern(
      12,
      "tools/call",
      { name: "add_note", arguments: { title: "t", body: "b" } },
      scoped,
    );
    const writeRefused = await rpc(gw.endpoint("demo"), write.body, write.headers);
    assert.equal((writeRefused.json.error as { code: number }).code, -32003);
    const search = modern(13, "tools/call", { name: "search_notes", arguments: { query: "" } }, scoped);
    const found = await rpc(gw.endpoint("demo"), search.body, search.headers);
    assert.equal(found.status, 200, found.text);
    assert.equal(jsonOf<{ count: number }>(found.json.result).count, 0, "the refused add never ran");
    const records = await waitFor("the refusals' audit records", async () => {
      const rows = (await auditRecords(gw)).filter(
        (r) => r.credentialId === scopedId && r.rpcMethod === "tools/call",
      );
      return rows.length >= 4 && rows;
    });
    assert.deepEqual(
      records.map((r) => [r.tool, r.decision]),
      [
        ["get_time", "allow"],
        ["delete_note", "deny"],
        ["add_note", "deny"],
        ["search_notes", "allow"],
      ],
    );
  });

  it("refuses a key on the very next request after `keys revoke`", async () => {
    const victim = await gw.cli(["keys", "create", "--name", "to-revoke"]);
    const call = modern(8, "tools/list", {}, victim.key as string);
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 200);
    const revoked = await gw.cli(["keys", "revoke", victim.id as string]);
    assert.equal(revoked.status, "revoked");
    const after = await rpc(gw.endpoint("demo"), call.body, call.headers);
    assert.equal(after.status, 401);
  });

  it("rotates a key: the new key works, the old one only during the overlap window", async () => {
    const original = await gw.cli(["keys", "create", "--name", "rotating"]);
    const rotated = await gw.cli(["keys", "rotate", original.id as string, "--overlap", "2"]);
    assert.equal(rotated.rotatedFrom, original.id);
    const oldCall = modern(9, "tools/list", {}, original.key as string);
    const newCall = modern(10, "tools/list", {}, rotated.key as string);
    assert.equal((await rpc(gw.endpoint("demo"), oldCall.body, oldCall.headers)).status, 200);
    assert.equal((await rpc(gw.endpoint("demo"), newCall.body, newCall.headers)).status, 200);
    await sleep(2500);
    assert.equal((await rpc(gw.endpoint("demo"), oldCall.body, oldCall.headers)).status, 401);
    assert.equal((await rpc(gw.endpoint("demo"), newCall.body, newCall.headers)).status, 200);
  });

  it("refuses an expired key", async () => {
    const short = await gw.cli(["keys", "create", "--name", "short", "--expires", "1s"]);
    await sleep(1200);
    const call = modern(11, "tools/list", {}, short.key as string);
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 401);
  });

  it("refuses key creation beyond the maximum lifetime, naming the limit", async () => {
    const r = await runCli([
      "keys",
      "create",
      "--name",
      "forever",
      "--expires",
      "4000d",
      "--config",
      gw.configFile,
      "--json",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /maximum key lifetime of 365 days/);
  });

  it("never writes a key or its hash to the logs", async () => {
    const text = [...gw.logs.map((l) => JSON.stringify(l)), ...gw.stderr].join("\n");
    assert.ok(!text.includes(key));
    assert.ok(!text.includes("pcl_test_"));
    assert.ok(!text.includes(key.split("_").at(-1) as string), "nor the secret part alone");
    // The stored HMAC of every key this file created (hex, as stored), in either case.
    const { openStore } = await import("../../src/store/open.js");
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    let hashes: string[];
    try {
      hashes = (await store.listKeys({ includeRevoked: true })).map((k) => k.hash);
    } finally {
      await store.close();
    }
    assert.ok(hashes.length >= 3, `checked ${hashes.length} key hashes`);
    const listed = JSON.stringify(await gw.cli(["keys", "list"]));
    for (const hash of hashes) {
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.ok(!text.toLowerCase().includes(hash), "a key hash reached the logs");
      assert.ok(
        !text.includes(Buffer.from(hash, "hex").toString("base64")),
        "a key hash reached the logs (base64)",
      );
      assert.ok(!listed.includes(hash), "keys list shows no hash");
    }
  });
});
