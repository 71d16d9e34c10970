/**
 * One behavioural suite for the Store interface, run against SQLite (a temp file) and
 * PostgreSQL (a throwaway database). PostgreSQL comes from PORTCULLIS_TEST_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test; when it is unreachable the PostgreSQL half is
 * skipped, except under CI=true where it fails.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openStore } from "../../src/store/open.js";
import { LISTENER_APPLICATION_NAME } from "../../src/store/postgres.js";
import type { AuditRecord, NewApiKey, Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";

interface Backend {
  /** Opens a new, migrated store instance on the backend's data (each call is a separate connection). */
  open(): Promise<Store>;
  /** Runs SQL with admin rights on the backend's data (PostgreSQL only). */
  admin?(query: string): Promise<void>;
  cleanup(): Promise<void>;
}

function newId(): string {
  return randomBytes(9).toString("base64url").replace(/[-_]/g, "x").slice(0, 12);
}

function newKey(overrides: Partial<NewApiKey> = {}): NewApiKey {
  return {
    id: newId(),
    name: "ci-bot",
    environment: "prod",
    hash: randomBytes(32).toString("hex"),
    scopes: ["github", "jira:search_*"],
    createdAt: new Date(1_760_000_000_123),
    expiresAt: new Date(1_790_000_000_456),
    rotatedFrom: null,
    createdBy: null,
    ...overrides,
  };
}

function auditRecord(i: number, credentialId: string | null): AuditRecord {
  return {
    at: new Date(1_760_000_000_000 + i),
    environment: "prod",
    principal: credentialId ? `key:${credentialId}` : null,
    method: credentialId ? "api_key" : null,
    credentialId,
    server: "github",
    rpcMethod: "tools/call",
    tool: i % 2 === 0 ? "create_issue" : null,
    decision: i % 3 === 0 ? "deny" : i % 5 === 0 ? "review" : "allow",
    reason: `reason ${i}`,
    latencyUs: 40 + i,
    detail: i % 2 === 0 ? { i, keyEnvironment: "prod", nested: { list: [1, "two", null] } } : null,
    decisionId: i % 2 === 0 ? `d-${i}` : null,
    ruleIds: i % 2 === 0 ? ["read-tier-tools", `rule-${i}`] : null,
    policyVersion: i % 2 === 0 ? "p-1a2b3c" : null,
  };
}

async function sqliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-store-"));
  // A missing parent directory must be created.
  const file = join(dir, "data", "portcullis.db");
  return {
    open: () => openStore(file),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function postgresBackend(): Promise<Backend> {
  const db = await createTestDatabase();
  return { open: () => openStore(db.url), admin: db.admin, cleanup: db.drop };
}

function storeSuite(kind: "sqlite" | "postgres", makeBackend: () => Promise<Backend>): void {
  let backend: Backend;
  let store: Store;

  before(async () => {
    backend = await makeBackend();
    store = await backend.open();
  });

  after(async () => {
    await store?.close();
    await backend?.cleanup();
  });

  it("opens the requested backend", () => {
    assert.equal(store.kind, kind);
  });

  it("migrate() is idempotent", async () => {
    await store.migrate();
    await store.migrate();
    const again = await backend.open();
    await again.close();
    assert.equal(await store.keysRevision(), 0);
  });

  it("stores a key and reads it back with scopes and dates intact", async () => {
    const key = newKey({ rotatedFrom: "AAAAAAAAAAAA" });
    await store.insertKey(key);
    const got = await store.getKey(key.id);
    assert.deepEqual(got, { ...key, revokedAt: null, lastUsedAt: null, useCount: 0 });
    assert.ok(got?.createdAt instanceof Date);
    assert.ok(got?.expiresAt instanceof Date);
    assert.equal(await store.getKey("unknownkey00"), undefined);

    const other = newKey({ scopes: [] });
    await store.insertKey(other);
    const listed = await store.listKeys();
    assert.deepEqual(listed.find((k) => k.id === other.id)?.scopes, []);
    assert.ok(listed.some((k) => k.id === key.id));
  });

  it("refuses a duplicate key id", async () => {
    const key = newKey();
    await store.insertKey(key);
    await assert.rejects(store.insertKey(key));
  });

  it("revokes a key once and hides it from the default list", async () => {
    const key = newKey();
    await store.insertKey(key);
    assert.equal(await store.revokeKey("unknownkey00", new Date()), false);
    const at = new Date(1_770_000_000_789);
    assert.equal(await store.revokeKey(key.id, at), true);
    assert.equal(await store.revokeKey(key.id, new Date()), false, "a second revoke changes nothing");
    assert.deepEqual((await store.getKey(key.id))?.revokedAt, at);
    assert.ok(!(await store.listKeys()).some((k) => k.id === key.id));
    assert.ok((await store.listKeys({ includeRevoked: true })).some((k) => k.id === key.id));
  });

  it("sets a new expiry, and refuses an unknown key", async () => {
    const key = newKey();
    await store.insertKey(key);
    const end = new Date(1_765_000_000_001);
    await store.setKeyExpiry(key.id, end);
    assert.deepEqual((await store.getKey(key.id))?.expiresAt, end);
    await assert.rejects(store.setKeyExpiry("unknownkey00", end), /no key with id unknownkey00/);
  });

  it("accumulates key usage and never moves last use backwards", async () => {
    const key = newKey();
    await store.insertKey(key);
    const t1 = new Date(1_770_000_100_000);
    const t0 = new Date(1_770_000_000_000);
    await store.recordKeyUsage([
      { id: key.id, count: 3, lastUsedAt: t1 },
      { id: "unknownkey00", count: 1, lastUsedAt: t1 },
    ]);
    await store.recordKeyUsage([{ id: key.id, count: 2, lastUsedAt: t0 }]);
    await store.recordKeyUsage([]);
    const got = await store.getKey(key.id);
    assert.equal(got?.useCount, 5);
    assert.deepEqual(got?.lastUsedAt, t1);
  });

  it("bumps the keys revision on every key mutation, not on usage", async () => {
    const key = newKey();
    const r0 = await store.keysRevision();
    await store.insertKey(key);
    const r1 = await store.keysRevision();
    await store.setKeyExpiry(key.id, new Date(1_780_000_000_000));
    const r2 = await store.keysRevision();
    await store.revokeKey(key.id, new Date());
    const r3 = await store.keysRevision();
    assert.ok(r0 < r1 && r1 < r2 && r2 < r3, `revisions ${r0} ${r1} ${r2} ${r3}`);
    await store.recordKeyUsage([{ id: key.id, count: 1, lastUsedAt: new Date() }]);
    await store.revokeKey(key.id, new Date());
    assert.equal(await store.keysRevision(), r3, "usage and no-op revokes leave the revision alone");
  });

  it("appends a batch of audit records and lists them newest first", async () => {
    const a = newId();
    const b = newId();
    const batch = Array.from({ length: 100 }, (_, i) =>
      auditRecord(i, i % 4 === 0 ? a : i % 4 === 1 ? b : null),
    );
    await store.appendAudit(batch);
    await store.appendAudit([]);

    const newest = await store.listAudit({ limit: 10 });
    assert.equal(newest.length, 10);
    for (let i = 1; i < newest.length; i++) {
      assert.ok((newest[i - 1]?.seq ?? 0) > (newest[i]?.seq ?? 0), "seq descending");
    }
    const { seq, ...last } = newest[0] ?? assert.fail("no records");
    assert.equal(typeof seq, "number");
    assert.deepEqual(last, batch[99]);

    const [byDecision] = await store.listAudit({ decisionId: "d-42" });
    assert.equal(byDecision?.reason, "reason 42", "an operator finds a refusal by its decision id");

    const forA = await store.listAudit({ credentialId: a, limit: 1000 });
    assert.equal(forA.length, 25);
    assert.ok(forA.every((r) => r.credentialId === a));
    assert.deepEqual(
      forA.map(({ seq: _seq, ...r }) => r),
      batch.filter((r) => r.credentialId === a).reverse(),
      "every field, detail JSON included, round-trips",
    );
    assert.equal((await store.listAudit({ credentialId: b, limit: 3 })).length, 3);
    assert.equal((await store.listAudit()).length, 100, "default limit");
  });

  it("gets and overwrites settings", async () => {
    assert.equal(await store.getSetting("secret.fingerprint"), undefined);
    await store.setSetting("secret.fingerprint", "abc");
    assert.equal(await store.getSetting("secret.fingerprint"), "abc");
    await store.setSetting("secret.fingerprint", "def");
    assert.equal(await store.getSetting("secret.fingerprint"), "def");
  });

  if (kind === "sqlite") {
    it("poll() reports a revocation committed by another connection", async () => {
      let changes = 0;
      const watch = store.watchKeys(() => changes++);
      const other = await backend.open();
      try {
        const key = newKey();
        await store.insertKey(key);
        assert.equal(changes, 1, "own key mutations are reported directly");
        watch.poll();
        assert.equal(changes, 1, "nothing new committed elsewhere");

        await other.appendAudit([auditRecord(1, key.id)]);
        watch.poll();
        assert.equal(changes, 1, "another connection's audit writes are not key changes");

        assert.equal(await other.revokeKey(key.id, new Date()), true);
        assert.equal(changes, 1, "nothing fires until poll()");
        watch.poll();
        assert.equal(changes, 2);
        watch.poll();
        assert.equal(changes, 2, "each change is reported once");
        assert.equal(watch.healthy(), true);
      } finally {
        await other.close();
        await watch.close();
      }
    });
  }

  if (kind === "postgres") {
    it("fans a revocation from another instance out to this instance's change feed", async () => {
      let changes = 0;
      const watch = store.watchKeys(() => changes++);
      const other = await backend.open();
      try {
        await waitFor("the listener", () => watch.healthy());
        const key = newKey();
        await other.insertKey(key);
        await waitFor("the insert notification", () => changes >= 2);
        const before = changes;
        assert.equal(await other.revokeKey(key.id, new Date()), true);
        await waitFor("the revoke notification", () => changes > before);
        assert.equal(watch.healthy(), true);
      } finally {
        await other.close();
        await watch.close();
      }
    });

    it("turns unhealthy when the listener connection dies, then recovers and reports a change", async () => {
      let changes = 0;
      const watch = store.watchKeys(() => changes++);
      try {
        await waitFor("the listener", () => watch.healthy());
        const before = changes;
        await backend.admin?.(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = '${LISTENER_APPLICATION_NAME}'`,
        );
        await waitFor("the watch to notice", () => !watch.healthy());
        await waitFor("the reconnect", () => watch.healthy());
        assert.ok(changes > before, "a reconnect makes the caller reload what it may have missed");
      } finally {
        await watch.close();
      }
      assert.equal(watch.healthy(), false, "a closed watch observes nothing");
    });
  }
}

describe("sqlite store", () => {
  storeSuite("sqlite", sqliteBackend);
});

describe("postgres store", { skip: await postgresSkip() }, () => {
  storeSuite("postgres", postgresBackend);
});
