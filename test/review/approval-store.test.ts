/**
 * Approvals in the store (migration 007), on SQLite and PostgreSQL: one decision wins, one
 * consumption wins (single use), deadlines hold, and a decision made through a second store
 * connection (another process: the CLI) reaches a waiting gateway through the change feed.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { argumentsHash, newApprovalId } from "../../src/review/binding.js";
import { decideApproval } from "../../src/review/decide.js";
import { ApprovalWaiter } from "../../src/review/waiter.js";
import { openStore } from "../../src/store/open.js";
import type { NewApproval, Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

function approval(overrides: Partial<NewApproval> = {}): NewApproval {
  const now = Date.now();
  return {
    id: newApprovalId(),
    environment: "test",
    principalId: "key:AAAABBBBCCCC",
    principalName: "agent",
    principalMethod: "api_key",
    credentialId: "AAAABBBBCCCC",
    server: "demo",
    rpcMethod: "tools/call",
    tool: "delete_note",
    argumentsHash: argumentsHash({ id: "n1" }),
    argumentsSummary: { id: "n1" },
    decisionId: "d1",
    ruleIds: ["r1"],
    policyVersion: "v1",
    createdAt: new Date(now),
    expiresAt: new Date(now + 60_000),
    ...overrides,
  };
}

function suite(open: () => Promise<{ url: string; cleanup(): Promise<void> }>): void {
  let gateway: Store;
  let cli: Store;
  let cleanup: () => Promise<void>;

  before(async () => {
    const db = await open();
    cleanup = db.cleanup;
    gateway = await openStore(db.url);
    cli = await openStore(db.url);
    // The caller's key: an approval naming a key the store does not hold is never decided.
    await gateway.insertKey({
      id: "AAAABBBBCCCC",
      name: "agent",
      environment: "test",
      hash: "0".repeat(64),
      scopes: ["demo"],
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 86_400_000),
      rotatedFrom: null,
      createdBy: null,
    });
  });
  after(async () => {
    await gateway?.close();
    await cli?.close();
    await cleanup?.();
  });

  it("stores and lists an approval, newest first, filtered by status", async () => {
    const a = approval();
    await gateway.insertApproval(a);
    const got = await cli.getApproval(a.id);
    assert.equal(got?.status, "pending");
    assert.deepEqual(got?.argumentsSummary, { id: "n1" });
    assert.deepEqual(got?.ruleIds, ["r1"]);
    assert.equal(got?.expiresAt.getTime(), a.expiresAt.getTime());
    assert.ok((await cli.listApprovals({ status: "pending" })).some((x) => x.id === a.id));
  });

  it("refuses approval replay: exactly one of many concurrent consumptions wins", async () => {
    const a = approval();
    await gateway.insertApproval(a);
    const decided = await decideApproval(cli, a.id, "approved", { name: "alice", via: "cli" });
    assert.equal(decided.ok, true);
    const wins = await Promise.all([1, 2, 3, 4].map(() => gateway.consumeApproval(a.id, new Date())));
    assert.equal(wins.filter(Boolean).length, 1);
    assert.equal((await cli.getApproval(a.id))?.status, "consumed");
    assert.equal(await gateway.consumeApproval(a.id, new Date()), false);
  });

  it("refuses self-approval and decides only once", async () => {
    const a = approval();
    await gateway.insertApproval(a);
    const self = await decideApproval(cli, a.id, "approved", { name: "Agent", via: "cli" });
    assert.equal(self.ok, false);
    assert.equal(!self.ok && self.code, "self_approval");
    const deny = await decideApproval(cli, a.id, "denied", { name: "bob", via: "cli" });
    assert.equal(deny.ok, true);
    const late = await decideApproval(cli, a.id, "approved", { name: "carol", via: "cli" });
    assert.equal(!late.ok && late.code, "not_pending");
    assert.equal(await gateway.consumeApproval(a.id, new Date()), false);
  });

  it("a pending approval past its deadline cannot be approved; it expires once", async () => {
    const a = approval({ expiresAt: new Date(Date.now() - 1) });
    await gateway.insertApproval(a);
    const late = await decideApproval(cli, a.id, "approved", { name: "alice", via: "cli" });
    assert.equal(!late.ok && late.code, "expired");
    assert.equal(await gateway.expireApproval(a.id, new Date()), true);
    assert.equal(await gateway.expireApproval(a.id, new Date()), false);
    assert.equal((await cli.getApproval(a.id))?.status, "expired");
  });

  it("a decision made through another connection reaches a waiting gateway before the approval's deadline", async () => {
    const waiter = new ApprovalWaiter(gateway, pino({ level: "silent" }));
    waiter.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const a = approval();
      await gateway.insertApproval(a);
      // Heard through the change feed, not at the deadline: a waiter that only wakes at its
      // deadline resolves "expired", and the test runner's timeout ends a waiter that never does.
      const waiting = waiter.wait(a.id, new Date(Date.now() + 30_000), new AbortController().signal);
      await decideApproval(cli, a.id, "approved", { name: "alice", via: "cli" });
      const outcome = await waiting;
      assert.equal(outcome.kind, "decided");
      assert.equal(outcome.kind === "decided" && outcome.record.status, "approved");
    } finally {
      await waiter.close();
    }
  });
}

describe("approvals in the SQLite store", () => {
  suite(async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-approvals-"));
    return { url: join(dir, "portcullis.db"), cleanup: () => rm(dir, { recursive: true, force: true }) };
  });
});

describe("approvals in the PostgreSQL store", { skip: await postgresSkip() }, () => {
  suite(async () => {
    const db = await createTestDatabase();
    return { url: db.url, cleanup: db.drop };
  });
});
