/**
 * A task's audit history (migration 013), on SQLite and PostgreSQL: a request record built
 * from a task token's Principal names the task and the actor chain in its hashed detail; the
 * store indexes the task id, so `searchAudit({ taskId })` returns exactly the task's records,
 * oldest first; and an intruder who edits the unhashed `task_id` index to hide a record from
 * the task's history (or slip one into another task's) is reported by `audit verify`.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { pino } from "pino";
import { requestRecord } from "../../src/audit/requestRecord.js";
import { recordTask } from "../../src/audit/taskDetail.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { AuditWriter } from "../../src/audit/writer.js";
import type { Principal } from "../../src/core/principal.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const log = pino({ level: "silent" });
const secret = randomBytes(48);
const OPTIONS = {
  flushIntervalMs: 5,
  maxBatch: 1000,
  checkpointEvery: 100,
  checkpointIntervalSeconds: 3600,
  arguments: "redacted" as const,
};

function principal(task: string | null): Principal {
  return {
    id: "key:4fT0qk2LxW9a",
    kind: "service",
    method: task === null ? "api_key" : "task",
    name: "nightly",
    environment: "prod",
    credentialId: task ?? "4fT0qk2LxW9a",
    scopes: null,
    oauthScopes: null,
    groups: [],
    issuedAt: new Date(),
    expiresAt: new Date(Date.now() + 900_000),
    ...(task === null
      ? {}
      : {
          task: { id: task, purpose: "triage", createdAt: new Date(), remainingCalls: 5 },
          actor: { sub: "agent-7", act: { sub: "ci-runner" } },
        }),
  };
}

function call(task: string | null, i: number) {
  return requestRecord(
    {
      environment: "prod",
      server: "demo",
      principal: principal(task),
      msg: { method: "tools/call", name: "get_time", message: { params: { arguments: { i } } } },
      started: performance.now(),
      policy: { decisionId: `d${i}`, ruleIds: ["read-tier-tools"], version: "v1" },
    },
    "allow",
    "allowed by read-tier-tools",
    i % 2 === 0 ? { upstreamStatus: 200 } : null,
    "v1",
  );
}

interface Backend {
  store: Store;
  sql(statement: string): Promise<void>;
  cleanup(): Promise<void>;
}

function suite(open: () => Promise<Backend>): void {
  let b: Backend;
  let chain: string;
  before(async () => {
    b = await open();
    const writer = await AuditWriter.open(b.store, log, OPTIONS, secret);
    chain = writer.chain;
    for (let i = 1; i <= 9; i++) {
      await writer.recordDurable(call(i % 3 === 0 ? null : i % 3 === 1 ? "tsk_A" : "tsk_B", i));
    }
    await writer.close();
  });
  after(async () => {
    await b?.store.close();
    await b?.cleanup();
  });

  it("a task token's request record names the task and the actor chain, outermost first", async () => {
    const [first] = await b.store.searchAudit({ taskId: "tsk_A", order: "asc", limit: 1 });
    assert.ok(first);
    assert.deepEqual(recordTask(first.detail), { taskId: "tsk_A", actor: ["agent-7", "ci-runner"] });
    assert.equal(first.method, "task");
    const bare = await b.store.searchAudit({ method: "api_key", limit: 10 });
    assert.equal(bare.length, 3);
    for (const r of bare) assert.deepEqual(recordTask(r.detail), { taskId: null, actor: null });
  });

  it("searching by task returns exactly that task's records, in order", async () => {
    const a = await b.store.searchAudit({ taskId: "tsk_A", order: "asc", limit: 50 });
    assert.deepEqual(
      a.map((r) => r.decisionId),
      ["d1", "d4", "d7"],
    );
    assert.equal((await b.store.searchAudit({ taskId: "tsk_B", limit: 50 })).length, 3);
    assert.equal((await b.store.searchAudit({ taskId: "tsk_nope", limit: 50 })).length, 0);
    assert.equal((await verifyAuditLog(b.store)).ok, true);
  });

  it("audit verify reports a record hidden from its task's history by editing the index", async () => {
    await b.sql(`UPDATE audit_log SET task_id = NULL WHERE chain = '${chain}' AND chain_seq = 4`);
    assert.equal((await b.store.searchAudit({ taskId: "tsk_A", limit: 50 })).length, 2, "hidden");
    const c = (await verifyAuditLog(b.store, { chain })).chains[0];
    assert.deepEqual([c?.ok, c?.problem?.kind, c?.problem?.seq], [false, "edited", 4]);
    assert.match(c?.problem?.detail ?? "", /task index/);
    await b.sql(`UPDATE audit_log SET task_id = 'tsk_A' WHERE chain = '${chain}' AND chain_seq = 4`);
    assert.equal((await verifyAuditLog(b.store, { chain })).ok, true);
  });

  it("audit verify reports a record slipped into another task's history", async () => {
    await b.sql(`UPDATE audit_log SET task_id = 'tsk_A' WHERE chain = '${chain}' AND chain_seq = 3`);
    const c = (await verifyAuditLog(b.store, { chain })).chains[0];
    assert.deepEqual([c?.ok, c?.problem?.kind, c?.problem?.seq], [false, "edited", 3]);
  });
}

describe("task history on sqlite", () =>
  suite(async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-task-audit-"));
    const file = join(dir, "portcullis.db");
    return {
      store: await openStore(file),
      async sql(statement) {
        const db = new BetterSqlite3(file);
        try {
          db.exec(statement);
        } finally {
          db.close();
        }
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }));

describe("task history on postgres", { skip: await postgresSkip() }, () =>
  suite(async () => {
    const db = await createTestDatabase();
    return { store: await openStore(db.url), sql: db.admin, cleanup: db.drop };
  }),
);
