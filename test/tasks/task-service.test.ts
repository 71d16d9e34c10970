/**
 * The tasks runtime over a real store (src/tasks/): minting checks the owner and the policy
 * and audits every decision; the task token verifies for its own servers only, until the task
 * ends (here or through a second store connection: another process), its owner's key is
 * revoked, or its budget is spent; a budget holds under concurrent calls, on SQLite and
 * PostgreSQL alike.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { issueKey } from "../../src/authn/keyLifecycle.js";
import { Keyring } from "../../src/authn/keyring.js";
import { compilePolicy } from "../../src/authz/policy/compile.js";
import { Config } from "../../src/config/schema.js";
import type { Principal } from "../../src/core/principal.js";
import { compileScopes } from "../../src/core/scope.js";
import { createMachineClient, revokeMachineClient } from "../../src/oauth/machineClients.js";
import { artefactKeys, lookupHash } from "../../src/oauth/storedArtefacts.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { keyOwnerPrincipal } from "../../src/tasks/owners.js";
import { startTasks, type TaskRuntime } from "../../src/tasks/runtime.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";

const ISSUER = "http://127.0.0.1:4999";
const DEMO = `${ISSUER}/mcp/demo`;
const FILES = `${ISSUER}/mcp/files`;

const POLICY = compilePolicy([
  {
    path: "tasks.yaml",
    text: `rules:
  - id: mint-anything-but-delete
    effect: allow
    match: { methods: [tasks/mint] }
    when: resource.name != "delete_note"
  - id: calls
    effect: allow
    match: { methods: [tools/call, tools/list] }
  - id: no-wipe
    effect: deny
    match: { methods: [tools/call] }
    when: resource.name == "wipe"
`,
  },
]);

const secret = randomBytes(32);

interface Harness {
  store: Store;
  tasks: TaskRuntime;
  keyring: Keyring;
  records: AuditRecord[];
  owner(scopes: string[]): Promise<Principal>;
  close(): Promise<void>;
}

async function harness(spec: string): Promise<Harness> {
  const store = await openStore(spec);
  const config = Config.parse({ servers: {} });
  const keyring = new Keyring(store, secret, "dev");
  await keyring.start();
  const records: AuditRecord[] = [];
  const tasks = await startTasks({
    store,
    secret,
    config: config.tasks,
    environment: "dev",
    issuer: ISSUER,
    servers: ["demo", "files"],
    policy: () => POLICY,
    tools: { facts: () => ({ tier: "read", openWorld: false, annotations: {} }) },
    keyring,
    builtinOAuth: true,
    record: (r) => {
      records.push(r);
    },
  });
  return {
    store,
    tasks,
    keyring,
    records,
    async owner(scopes) {
      const issued = await issueKey(store, secret, config, { name: "agent", scopes });
      const found = await keyOwnerPrincipal(store, `key:${issued.record.id}`);
      assert.ok(found);
      return found.principal;
    },
    async close() {
      await tasks.close();
      await keyring.close();
      await store.close();
    },
  };
}

/** What the authenticate stage does: refresh the keyring, then verify. */
async function verify(h: Harness, token: string, resource: string) {
  await h.keyring.refresh();
  return h.tasks.verifier.verify(token, resource);
}

describe("tasks runtime (SQLite)", () => {
  let dir: string;
  let h: Harness;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-tasks-"));
    h = await harness(join(dir, "p.db"));
  });
  after(async () => {
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a task token for one tool acts for its owner on that server only, and is audited once", async () => {
    const owner = await h.owner(["demo", "files"]);
    const minted = await h.tasks.service.mint(
      owner,
      { purpose: "triage", grants: ["demo:echo"], actor: { sub: "agent-7" } },
      "cli",
    );
    assert.ok(minted.ok, JSON.stringify(minted));
    const ok = await verify(h, minted.token, DEMO);
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.principal.id, owner.id);
    assert.equal(ok.principal.method, "task");
    assert.equal(ok.principal.task?.id, minted.task.id);
    assert.deepEqual(ok.principal.actor, { sub: "agent-7" });
    assert.deepEqual(ok.principal.scopes?.source, ["demo:echo"]);
    const other = await verify(h, minted.token, FILES);
    assert.ok(!other.ok && other.reason.includes("another server"));
    const mintRecords = h.records.filter((r) => r.detail?.task === minted.task.id);
    assert.equal(mintRecords.length, 1);
    assert.equal(mintRecords[0]?.decision, "allow");
    assert.equal(mintRecords[0]?.decisionId, minted.decisionId);
    assert.equal(mintRecords[0]?.detail?.purpose, "triage");
    assert.equal(await h.tasks.service.taskIdOf(minted.token), minted.task.id);
  });

  it("asking for more than the owner's key has is refused (invalid_scope), naming the grant, audited", async () => {
    const owner = await h.owner(["demo:echo"]);
    const r = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo:add_note"] }, "cli");
    assert.ok(!r.ok);
    assert.equal(r.error, "invalid_scope");
    assert.match(r.reason, /demo:add_note/);
    const rec = h.records.find((x) => x.decisionId === r.decisionId);
    assert.equal(rec?.decision, "deny");
    assert.match(rec?.reason ?? "", /demo:add_note/);
  });

  it("the policy decides at creation: tasks/mint must allow and tools/call must not deny", async () => {
    const owner = await h.owner(["demo"]);
    const mint = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo:delete_note"] }, "cli");
    assert.ok(!mint.ok && mint.error === "access_denied" && mint.reason.includes("tasks/mint"));
    const call = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo:wipe"] }, "cli");
    assert.ok(!call.ok && call.reason.includes("tools/call") && call.reason.includes("wipe"));
    assert.deepEqual(call.ok ? [] : h.records.find((x) => x.decisionId === call.decisionId)?.ruleIds, [
      "no-wipe",
    ]);
  });

  it("a longer life than the maximum is refused; the task never outlives its owner's key", async () => {
    const owner = await h.owner(["demo"]);
    const long = await h.tasks.service.mint(
      owner,
      { purpose: "p", grants: ["demo"], ttlSeconds: 7200 },
      "cli",
    );
    assert.ok(!long.ok && long.error === "invalid_request");
    const soon = new Date(Date.now() + 60_000);
    const short = await h.tasks.service.mint(
      { ...owner, expiresAt: soon },
      { purpose: "p", grants: ["demo"] },
      "cli",
    );
    assert.ok(short.ok);
    assert.ok(short.task.expiresAt.getTime() <= soon.getTime());
  });

  it("ending the task through another store connection refuses its token on the next verification", async () => {
    const owner = await h.owner(["demo"]);
    const minted = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"] }, "cli");
    assert.ok(minted.ok);
    assert.ok((await verify(h, minted.token, DEMO)).ok);
    const other = await openStore(join(dir, "p.db"));
    try {
      assert.equal(await other.endTask(minted.task.id, { at: new Date(), reason: "ended", by: "cli" }), true);
      assert.equal(
        await other.endTask(minted.task.id, { at: new Date(), reason: "ended", by: "cli" }),
        false,
      );
    } finally {
      await other.close();
    }
    const refused = await waitFor("the ended task to be refused", async () => {
      const r = await verify(h, minted.token, DEMO);
      return r.ok ? undefined : r;
    });
    assert.match(refused.reason, /ended/);
  });

  it("revoking the owner's key refuses the task token and ends the task (owner_revoked)", async () => {
    const owner = await h.owner(["demo"]);
    const minted = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"] }, "cli");
    assert.ok(minted.ok);
    assert.ok((await verify(h, minted.token, DEMO)).ok);
    await h.store.revokeKey(owner.credentialId as string, new Date());
    const again = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"] }, "cli");
    assert.ok(!again.ok && again.error === "access_denied", "a revoked key owns no new task");
    const r = await verify(h, minted.token, DEMO);
    assert.ok(!r.ok && r.reason.includes("revoked"), JSON.stringify(r));
    const ended = await waitFor("the task to end", async () => {
      const t = await h.store.getTask(minted.task.id);
      return t?.endedAt ? t : undefined;
    });
    assert.equal(ended.endReason, "owner_revoked");
  });

  it("an owner key this replica has not heard of yet is refused, and the task is not ended for it", async () => {
    const owner = await h.owner(["demo"]);
    const minted = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"] }, "cli");
    assert.ok(minted.ok);
    // No keyring refresh: the keyring has not loaded the new key yet.
    const early = await h.tasks.verifier.verify(minted.token, DEMO);
    assert.ok(!early.ok && early.reason.includes("unknown"), JSON.stringify(early));
    assert.ok((await verify(h, minted.token, DEMO)).ok, "accepted once the keyring knows the key");
    assert.equal((await h.store.getTask(minted.task.id))?.endedAt, null);
  });

  const oauthOwner = (sub: string, kind: "user" | "service"): Principal => ({
    id: `oauth:${ISSUER}#${sub}`,
    kind,
    method: "oauth",
    name: sub,
    environment: "dev",
    credentialId: randomBytes(8).toString("hex"),
    scopes: compileScopes(["*"]),
    oauthScopes: new Set(["mcp"]),
    groups: [],
    issuedAt: new Date(),
    expiresAt: new Date(Date.now() + 300_000),
  });

  it("a person's task is refused once the grant it was minted from is revoked (user disabled, RFC 7009)", async () => {
    const grantId = randomBytes(12).toString("base64url");
    const storedId = lookupHash(artefactKeys(secret), grantId);
    await h.store
      .oauthDatabase()
      .insertInto("oauth_payloads")
      .values({
        model: "Grant",
        id: storedId,
        payload: "{}",
        grant_id: null,
        uid: null,
        user_code: null,
        expires_at: Date.now() + 3_600_000,
        consumed_at: null,
      })
      .execute();
    const minted = await h.tasks.service.mint(
      oauthOwner("alice", "user"),
      { purpose: "p", grants: ["demo"], ownerGrantId: grantId },
      "token_exchange",
    );
    assert.ok(minted.ok, JSON.stringify(minted));
    const accepted = await verify(h, minted.token, DEMO);
    assert.ok(accepted.ok);
    assert.deepEqual(
      [...(accepted.principal.oauthScopes ?? [])],
      ["mcp"],
      "the person's scopes go with the task",
    );
    // Revocation as the authorization server does it: the grant's row goes, announced.
    await h.store.mutateCredentials(async (trx) => {
      await trx
        .deleteFrom("oauth_payloads")
        .where("model", "=", "Grant")
        .where("id", "=", storedId)
        .execute();
      return true;
    });
    const r = await verify(h, minted.token, DEMO);
    assert.ok(!r.ok && r.reason.includes("grant"), JSON.stringify(r));
    const ended = await waitFor(
      "the task to end",
      async () => (await h.store.getTask(minted.task.id))?.endReason,
    );
    assert.equal(ended, "owner_revoked");
  });

  it("a machine client's task is refused once the client is revoked", async () => {
    const created = await createMachineClient(h.store, randomBytes(32), {
      name: "ci",
      authMethod: "client_secret_basic",
      servers: ["demo"],
      scopes: [],
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    const clientId = created.client.clientId;
    const minted = await h.tasks.service.mint(
      oauthOwner(clientId, "service"),
      { purpose: "p", grants: ["demo"], clientId },
      "token_exchange",
    );
    assert.ok(minted.ok, JSON.stringify(minted));
    assert.ok((await verify(h, minted.token, DEMO)).ok);
    assert.equal(await revokeMachineClient(h.store, clientId), true);
    const r = await verify(h, minted.token, DEMO);
    assert.ok(!r.ok && r.reason.includes("machine client"), JSON.stringify(r));
  });

  it("delegation: a task minted with a task token is narrower, keeps the actor chain, and dies with its parent", async () => {
    const owner = await h.owner(["demo", "files"]);
    const parent = await h.tasks.service.mint(
      owner,
      { purpose: "parent", grants: ["demo"], actor: { sub: "agent:planner" } },
      "cli",
    );
    assert.ok(parent.ok);
    const asParent = await verify(h, parent.token, DEMO);
    assert.ok(asParent.ok);
    const wider = await h.tasks.service.mint(
      asParent.principal,
      { purpose: "wider", grants: ["files"] },
      "cli",
    );
    assert.ok(!wider.ok && wider.error === "invalid_scope", "a sub-task never holds more than its parent");
    const child = await h.tasks.service.mint(
      asParent.principal,
      { purpose: "child", grants: ["demo:echo"], actor: { sub: "agent:worker" } },
      "token_exchange",
    );
    assert.ok(child.ok, JSON.stringify(child));
    const asChild = await verify(h, child.token, DEMO);
    assert.ok(asChild.ok);
    assert.equal(asChild.principal.id, owner.id, "still acting for the same owner");
    assert.deepEqual(asChild.principal.actor, { sub: "agent:worker", act: { sub: "agent:planner" } });
    assert.equal(await h.tasks.service.end(parent.task.id, "ended", "operator:test"), true);
    const refused = await verify(h, child.token, DEMO);
    assert.ok(!refused.ok && refused.reason.includes("parent task"), JSON.stringify(refused));
  });

  it("a forged token (another key) and an altered act are refused", async () => {
    const owner = await h.owner(["demo"]);
    const minted = await h.tasks.service.mint(
      owner,
      { purpose: "p", grants: ["demo"], actor: { sub: "agent-1" } },
      "cli",
    );
    assert.ok(minted.ok);
    const [head, body, sig] = minted.token.split(".");
    const claims = JSON.parse(Buffer.from(body as string, "base64url").toString()) as Record<string, unknown>;
    claims.act = { sub: "admin-bot" };
    const altered = `${head}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`;
    const r = await verify(h, altered, DEMO);
    assert.ok(!r.ok && r.reason.includes("signature"), JSON.stringify(r));
    assert.equal(await h.tasks.service.taskIdOf(altered), null);
  });
});

async function budgetUnderConcurrency(h: Harness): Promise<void> {
  const owner = await h.owner(["demo"]);
  const minted = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"], budget: 5 }, "cli");
  assert.ok(minted.ok);
  const outcomes = await Promise.all(Array.from({ length: 20 }, () => h.tasks.calls.consume(minted.task.id)));
  assert.equal(outcomes.filter((o) => o.ok).length, 5);
  assert.equal(outcomes.filter((o) => o.ok && o.last).length, 1);
  const t = await h.store.getTask(minted.task.id);
  assert.equal(t?.callsUsed, 5);
  assert.equal(t?.endReason, "budget");
  const r = await waitFor("the spent task to be refused", async () => {
    const v = await verify(h, minted.token, DEMO);
    return v.ok ? undefined : v;
  });
  assert.match(r.reason, /budget/);
}

describe("task tokens fail closed", () => {
  it("while the change feed cannot be observed, every task token is refused as unavailable (503)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-tasks-"));
    const h = await harness(join(dir, "p.db"));
    try {
      const owner = await h.owner(["demo"]);
      const minted = await h.tasks.service.mint(owner, { purpose: "p", grants: ["demo"] }, "cli");
      assert.ok(minted.ok);
      assert.ok((await verify(h, minted.token, DEMO)).ok);
      // The live-task view stops observing changes (as when PostgreSQL's listener is lost).
      await h.tasks.close();
      const r = await verify(h, minted.token, DEMO);
      assert.ok(!r.ok && r.unavailable === true, JSON.stringify(r));
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const PG_SKIP = await postgresSkip();

describe("a task's budget holds under concurrent calls", () => {
  it("SQLite", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-tasks-"));
    const h = await harness(join(dir, "p.db"));
    try {
      await budgetUnderConcurrency(h);
    } finally {
      await h.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("PostgreSQL", { skip: PG_SKIP }, async () => {
    let db: TestDatabase | undefined;
    let h: Harness | undefined;
    try {
      db = await createTestDatabase();
      h = await harness(db.url);
      await budgetUnderConcurrency(h);
    } finally {
      await h?.close();
      await db?.drop();
    }
  });
});
