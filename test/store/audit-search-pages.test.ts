/**
 * The console's audit search (src/admin/auditSearch.ts) over the store's keyset pagination, on
 * SQLite and PostgreSQL: walking Older pages visits every matching record once, newest first,
 * and Newer pages walk back; "who" and "reason contains" match any case and treat LIKE's
 * wildcards (`%`, `_`) and `\` as literal characters; a page is bounded.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type AuditCursor,
  type AuditSearch,
  MAX_AUDIT_PAGE,
  searchAudit,
} from "../../src/admin/auditSearch.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const ANY: AuditSearch = { decision: "", principal: "", server: "", tool: "", text: "" };
const SECRET = randomBytes(32);

function record(i: number, principal: string, reason: string): AuditRecord {
  return {
    at: new Date(1_760_000_000_000 + i),
    environment: "test",
    principal,
    method: "api_key",
    credentialId: null,
    server: i % 2 === 0 ? "even" : "odd",
    rpcMethod: "tools/call",
    tool: "t",
    decision: "allow",
    reason,
    latencyUs: 1,
    detail: null,
  };
}

function suite(open: () => Promise<{ store: Store; done(): Promise<void> }>): void {
  let store: Store;
  let done: () => Promise<void>;
  before(async () => {
    ({ store, done } = await open());
    const records: AuditRecord[] = [];
    for (let i = 0; i < 23; i++) records.push(record(i, `key:k${i}`, `Reason number ${i}`));
    records.push(record(100, "key:50%off", "literal 100% match"));
    records.push(record(101, "key:50xoff", "no percent here"));
    records.push(record(102, "key:a_b", "under_score"));
    records.push(record(103, "key:axb", "underXscore"));
    records.push(record(104, "key:back\\slash", "back\\slash"));
    await store.appendAudit(records);
  });
  after(async () => {
    await store?.close();
    await done?.();
  });

  const page = (search: AuditSearch, cursor: AuditCursor, size: number) =>
    searchAudit(store, SECRET, search, { cursor, size });

  it("walks older pages through every matching record once, newest first, and newer pages back", async () => {
    const search = { ...ANY, server: "even" };
    const seen: number[][] = [];
    let cursor: AuditCursor = null;
    for (;;) {
      const p = await page(search, cursor, 4);
      assert.ok(p.found.length <= 4);
      seen.push(p.found.map((r) => r.seq));
      if (p.older === null) break;
      cursor = { before: p.older };
    }
    const all = seen.flat();
    const expected = (await store.searchAudit({ server: "even", limit: 1000 })).map((r) => r.seq);
    assert.deepEqual(all, expected, "every record once, newest first");
    // And back: from the last page, Newer pages give the same pages in reverse.
    let back = await page(search, { before: (seen.at(-2) as number[]).at(-1) as number }, 4);
    assert.deepEqual(
      back.found.map((r) => r.seq),
      seen.at(-1),
    );
    for (let i = seen.length - 2; i >= 0; i--) {
      assert.ok(back.newer !== null);
      back = await page(search, { after: back.newer }, 4);
      assert.deepEqual(
        back.found.map((r) => r.seq),
        seen[i],
      );
    }
    assert.equal(back.newer, null, "the newest page has no newer page");
  });

  it("matches who and reason in any case, with % _ and \\ taken literally", async () => {
    const who = async (principal: string) =>
      (await page({ ...ANY, principal }, null, 50)).found.map((r) => r.principal);
    assert.deepEqual(await who("50%OFF"), ["key:50%off"]);
    assert.deepEqual(await who("a_b"), ["key:a_b"]);
    assert.deepEqual(await who("back\\slash"), ["key:back\\slash"]);
    const reason = async (text: string) =>
      (await page({ ...ANY, text }, null, 50)).found.map((r) => r.reason);
    assert.deepEqual(await reason("100%"), ["literal 100% match"]);
    assert.deepEqual(await reason("UNDER_"), ["under_score"]);
    assert.equal((await reason("reason NUMBER")).length, 23);
  });

  it("bounds a page at MAX_AUDIT_PAGE whatever size is asked", async () => {
    const p = await page(ANY, null, 10_000);
    assert.ok(p.found.length <= MAX_AUDIT_PAGE);
    assert.equal((await page(ANY, null, 0)).found.length, 1, "at least one");
  });
}

describe("audit search pages on sqlite", () => {
  suite(async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-audit-pages-"));
    const store = await openStore(join(dir, "portcullis.db"));
    return { store, done: () => rm(dir, { recursive: true, force: true }) };
  });
});

describe("audit search pages on postgres", { skip: await postgresSkip() }, () => {
  suite(async () => {
    const db = await createTestDatabase();
    return { store: await openStore(db.url), done: db.drop };
  });
});
