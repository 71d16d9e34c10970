/**
 * Steady on day 30: every token exchange creates a task row, so tasks that are over leave the
 * store after `tasks.retentionDays` (their audit records stay). purgeTasks deletes exactly
 * the tasks ended or expired before the cut-off, never a live or recent one.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openStore } from "../../src/store/open.js";
import type { NewTask } from "../../src/store/taskTypes.js";
import type { Store } from "../../src/store/types.js";

const DAY = 86_400_000;

function task(id: string, createdAt: number, lifetimeMs: number): NewTask {
  return {
    id,
    owner: { id: "key:owner", kind: "service", method: "api_key", name: "owner", credentialId: "owner" },
    actor: null,
    purpose: "retention",
    grants: ["demo"],
    environment: "dev",
    createdAt: new Date(createdAt),
    expiresAt: new Date(createdAt + lifetimeMs),
    budget: null,
    clientId: null,
  };
}

describe("tasks that are over leave the store after their retention", () => {
  let dir: string;
  let store: Store;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-task-retention-"));
    store = await openStore(join(dir, "p.db"));
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("deletes tasks expired or ended before the cut-off, keeps live and recent ones", async () => {
    const now = Date.now();
    await store.insertTask(task("expired-long-ago", now - 40 * DAY, 900_000));
    await store.insertTask(task("ended-long-ago", now - 40 * DAY, 3600_000));
    await store.endTask("ended-long-ago", {
      at: new Date(now - 40 * DAY + 60_000),
      reason: "ended",
      by: "cli",
    });
    await store.insertTask(task("ended-yesterday", now - DAY, 3600_000));
    await store.endTask("ended-yesterday", { at: new Date(now - DAY + 60_000), reason: "ended", by: "cli" });
    await store.insertTask(task("live", now, 900_000));

    const deleted = await store.purgeTasks(new Date(now - 30 * DAY));
    assert.equal(deleted, 2);
    const left = (await store.listTasks({ limit: 100 })).map((t) => t.id).sort();
    assert.deepEqual(left, ["ended-yesterday", "live"]);
    assert.deepEqual(
      (await store.liveTasks(new Date())).map((t) => t.id),
      ["live"],
    );
  });
});
