/**
 * The change feed and the cache that follows it (src/store/changeFeed.ts, feedCache.ts), on
 * a real SQLite file opened by two connections as a gateway and the CLI open it: one feed per
 * process fans a change out to every subscriber; a request that notices a change is judged
 * on a value that includes it, even when it arrives while a reload is already running; the
 * steady state costs no store query; and a closed cache fails closed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FeedCache } from "../../src/store/feedCache.js";
import { openStore } from "../../src/store/open.js";
import type { NewApiKey, Store } from "../../src/store/types.js";
import { waitFor } from "../helpers/wait.js";

function newKey(): NewApiKey {
  return {
    id: randomBytes(9).toString("base64url").replace(/[-_]/g, "x").slice(0, 12),
    name: "feed-test",
    environment: "dev",
    hash: randomBytes(32).toString("hex"),
    scopes: [],
    createdAt: new Date(),
    expiresAt: new Date(Date.now() + 86_400_000),
    rotatedFrom: null,
    createdBy: null,
  };
}

/** The ids of revoked keys, as a cache value. */
async function revokedIds(store: Store): Promise<Set<string>> {
  return new Set(
    (await store.listKeys({ includeRevoked: true })).filter((k) => k.revokedAt).map((k) => k.id),
  );
}

describe("the change feed and FeedCache on SQLite", () => {
  let dir: string;
  let gateway: Store;
  let cli: Store;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-feed-"));
    const file = join(dir, "portcullis.db");
    gateway = await openStore(file);
    cli = await openStore(file);
  });
  after(async () => {
    await gateway?.close();
    await cli?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("fans one change made by another process out to every subscriber, once each", async () => {
    const heard = [0, 0, 0];
    const watches = heard.map((_, i) =>
      gateway.watchKeys(() => {
        heard[i] = (heard[i] ?? 0) + 1;
      }),
    );
    try {
      const key = newKey();
      await cli.insertKey(key);
      watches[0]?.poll();
      assert.deepEqual(heard, [1, 1, 1], "one poll of the process's feed reaches every subscriber");
      watches[2]?.poll();
      assert.deepEqual(heard, [1, 1, 1], "each change is reported once");
      await watches[1]?.close();
      await cli.revokeKey(key.id, new Date());
      watches[0]?.poll();
      assert.deepEqual(heard, [2, 1, 2], "a closed subscription hears nothing more");
    } finally {
      for (const w of watches) await w.close();
    }
  });

  it("answers from memory while nothing changed, and reloads on the next refresh after a change", async () => {
    let loads = 0;
    const cache = new FeedCache(gateway, new Set<string>(), {
      load: () => {
        loads++;
        return revokedIds(gateway);
      },
    });
    await cache.start();
    try {
      assert.equal(cache.healthy(), true);
      const before = loads;
      assert.equal(cache.refresh(), undefined, "steady state: synchronous, nothing to wait for");
      assert.equal(cache.refresh(), undefined);
      assert.equal(loads, before, "no store read while nothing changed");
      const key = newKey();
      await gateway.insertKey(key);
      await gateway.revokeKey(key.id, new Date());
      const pending = cache.refresh();
      assert.ok(pending instanceof Promise, "a change in this process makes the next refresh wait");
      await pending;
      assert.ok(cache.value.has(key.id));
    } finally {
      await cache.close();
    }
    assert.equal(cache.healthy(), false, "a closed cache observes nothing: callers fail closed");
  });

  it("a change reported while a reload runs is in the value that reload resolves with", async () => {
    let release: () => void = () => {};
    let loads = 0;
    const cache = new FeedCache(gateway, new Set<string>(), {
      load: async () => {
        const value = await revokedIds(gateway);
        // The second load (the first after start) read before the revocation below, and is
        // held until that revocation has been reported: its result is already stale.
        if (++loads === 2) await new Promise<void>((r) => (release = r));
        return value;
      },
    });
    await cache.start();
    try {
      const key = newKey();
      await cli.insertKey(key);
      cache.poll();
      const reloading = cache.refresh();
      assert.ok(reloading instanceof Promise);
      await waitFor("the reload to have read", () => loads >= 2);
      await cli.revokeKey(key.id, new Date());
      cache.poll();
      assert.equal(cache.refresh(), reloading, "one reload in flight: the same promise");
      release();
      await reloading;
      assert.ok(cache.value.has(key.id), "the revocation reported during the reload is in its result");
    } finally {
      await cache.close();
    }
  });
});
