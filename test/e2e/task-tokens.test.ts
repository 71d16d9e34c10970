/**
 * Task tokens at a real gateway (docs/tasks.md): a task created for an API key's owner,
 * limited to one tool, works for that tool only; each attack the issue names is refused:
 * the token used on another server, for another tool, after its budget or lifetime ran out,
 * after its owner's key was revoked, after `tasks end`, forged with another key, or with its
 * `act` (the agent acting for the owner) altered. Tasks are created and ended as
 * `portcullis tasks start|end` does, with the compiled TaskService over the gateway's store.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { auditRecords } from "../helpers/auditRecords.js";
import {
  createKey,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
} from "../helpers/gateway.js";
import { endTask, mintTask, startTask } from "../helpers/tasks.js";
import { waitFor } from "../helpers/wait.js";

const demo = { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] };

describe("task tokens", () => {
  let gw: RunningGateway;
  let keyId: string;
  let id = 1;

  before(async () => {
    gw = await startGateway({ config: { environment: "dev", servers: { demo, other: demo } } });
    ({ id: keyId } = await createKey(gw, "agent", ["--servers", "demo,other"]));
  });
  after(async () => {
    await gw?.stop();
  });

  const call = (token: string, tool: string, server = "demo", args: Record<string, unknown> = {}) => {
    const m = modern(id++, "tools/call", { name: tool, arguments: args }, token);
    return rpc(gw.endpoint(server), m.body, m.headers);
  };
  const echo = (token: string, server = "demo") => call(token, "echo", server, { text: "hello" });
  const list = async (token: string) => {
    const m = modern(id++, "tools/list", {}, token);
    const r = await rpc(gw.endpoint("demo"), m.body, m.headers);
    return (r.json.result as { tools: { name: string }[] }).tools.map((t) => t.name);
  };

  it("a task limited to one tool works for that tool only, and acts for its owner in the audit trail", async () => {
    const { token, task } = await startTask(gw, keyId, {
      purpose: "echo a greeting",
      grants: ["demo:echo"],
      actor: { sub: "agent:summariser" },
    });
    const ok = await echo(token);
    assert.equal(ok.status, 200, ok.text);
    assert.equal((ok.json.result as { content: { text: string }[] }).content[0]?.text, "hello");
    assert.deepEqual(await list(token), ["echo"]);
    const other = await call(token, "get_time");
    assert.equal(other.status, 200, "an out-of-grant call is the request's JSON-RPC error");
    assert.equal((other.json.error as { code: number }).code, -32003);
    const records = await waitFor("the task's call records", async () => {
      const rows = (await auditRecords(gw)).filter(
        (r) => r.method === "task" && r.rpcMethod === "tools/call",
      );
      return rows.length >= 2 && rows;
    });
    for (const r of records) {
      assert.equal(r.principal, `key:${keyId}`, "the task acts for its owner");
      assert.notEqual(r.credentialId, keyId, "the credential is the task token, not the key");
    }
    assert.deepEqual(records.map((r) => [r.tool, r.decision]).sort(), [
      ["echo", "allow"],
      ["get_time", "deny"],
    ]);
    const minted = (await auditRecords(gw)).find(
      (r) => r.detail?.event === "task.created" && r.detail.task === task.id,
    );
    assert.equal(minted?.principal, `key:${keyId}`);
    assert.deepEqual(minted?.detail?.actor, { sub: "agent:summariser" });
    assert.equal(minted?.detail?.purpose, "echo a greeting");
  });

  it("task token used on another server: refused (its audience is the task's servers only)", async () => {
    const { token } = await startTask(gw, keyId, { purpose: "demo only", grants: ["demo"] });
    assert.equal((await echo(token)).status, 200);
    const r = await echo(token, "other");
    assert.equal(r.status, 401, r.text);
    const refusal = await waitFor("the refusal's record", async () =>
      (await auditRecords(gw)).find((x) => x.server === "other" && x.reason.includes("another server")),
    );
    assert.equal(refusal.decision, "deny");
  });

  it("asking for more than the owner's key has is refused", async () => {
    const { id: narrow } = await createKey(gw, "narrow", ["--servers", "demo:echo"]);
    const r = await mintTask(gw, narrow, { purpose: "more", grants: ["demo:get_time"] });
    assert.ok(!r.ok);
    assert.equal(r.error, "invalid_scope");
    const longer = await mintTask(gw, narrow, {
      purpose: "longer",
      grants: ["demo:echo"],
      ttlSeconds: 86_400,
    });
    assert.ok(!longer.ok && longer.error === "invalid_request");
  });

  it("the call budget runs out: the last call passes, the next is refused and the task is over", async () => {
    const { token, task } = await startTask(gw, keyId, { purpose: "two calls", grants: ["demo"], budget: 2 });
    assert.equal((await list(token)).includes("echo"), true, "lists are not charged");
    assert.equal((await echo(token)).status, 200);
    assert.equal((await echo(token)).status, 200);
    const third = await echo(token);
    assert.equal(third.status, 401, third.text);
    const rec = await waitFor("the budget refusal", async () =>
      (await auditRecords(gw)).find((x) => x.decision === "deny" && x.reason.includes(task.id)),
    );
    assert.match(rec.reason, /budget/);
  });

  it("the lifetime runs out: refused from the first request after the task's end", async () => {
    const { token, task } = await startTask(gw, keyId, { purpose: "brief", grants: ["demo"], ttlSeconds: 2 });
    assert.equal((await echo(token)).status, 200);
    await waitFor("the task's end", () => Date.now() > task.expiresAt.getTime() + 20, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const r = await echo(token);
    assert.equal(r.status, 401, r.text);
  });

  it("revoking the owner's key refuses its task tokens on the next request", async () => {
    const { id: owner } = await createKey(gw, "short-lived owner", ["--servers", "demo"]);
    const { token } = await startTask(gw, owner, { purpose: "owner goes", grants: ["demo:echo"] });
    assert.equal((await echo(token)).status, 200);
    await gw.cli(["keys", "revoke", owner]);
    const r = await echo(token);
    assert.equal(r.status, 401, r.text);
  });

  it("`tasks end` from another process refuses the task token within the revocation bound", async () => {
    const { token, task } = await startTask(gw, keyId, { purpose: "ended early", grants: ["demo"] });
    assert.equal((await echo(token)).status, 200);
    assert.equal(await endTask(gw, task.id), true);
    // DESIGN: a revocation reaches every replica within 100 ms. The embedded SQLite store is
    // watched by polling (at most every 20 ms on the request path), so a request sent in that
    // window may still pass; one sent later never does. (PostgreSQL pushes the change: see
    // task-token-after-end-on-another-replica.test.ts, refused on the very next request.)
    const ended = Date.now();
    for (;;) {
      const sent = Date.now();
      const r = await echo(token);
      if (r.status === 401) break;
      assert.equal(r.status, 200, r.text);
      assert.ok(sent - ended <= 100, `accepted a request sent ${sent - ended} ms after the task ended`);
    }
    assert.equal(await endTask(gw, task.id), false, "ending twice ends nothing");
  });

  it("forged task token (signed with another key, same claims): refused", async () => {
    const { token } = await startTask(gw, keyId, { purpose: "to forge", grants: ["demo"] });
    const [header, payload] = token.split(".") as [string, string];
    const { privateKey, publicKey } = await generateKeyPair("ES256");
    const kid = (JSON.parse(Buffer.from(header, "base64url").toString()) as { kid: string }).kid;
    assert.ok((await exportJWK(publicKey)).x);
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid })
      .sign(privateKey);
    const r = await echo(forged);
    assert.equal(r.status, 401, r.text);
  });

  it("act forgery: a token whose actor was altered fails its signature", async () => {
    const { token } = await startTask(gw, keyId, {
      purpose: "to alter",
      grants: ["demo"],
      actor: { sub: "agent:low", act: { sub: "agent:origin" } },
    });
    assert.equal((await echo(token)).status, 200);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    assert.deepEqual(claims.act, { sub: "agent:low", act: { sub: "agent:origin" } }, "delegation chain kept");
    claims.act = { sub: "agent:admin" };
    const altered = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    const r = await echo(altered);
    assert.equal(r.status, 401, r.text);
    const rec = await waitFor("the forgery's record", async () =>
      (await auditRecords(gw)).find((x) => x.decision === "deny" && x.reason.includes("signature")),
    );
    assert.equal(rec.principal, null, "a forged token names no principal");
  });
});
