/**
 * The replay store of JWT authorization grants (migration 012, src/oauth/assertionReplay.ts)
 * on SQLite and PostgreSQL: a `jti` is redeemed once per issuer while its assertion lives,
 * even by two connections racing (two replicas); expired rows are reclaimed and purged, so
 * the table never grows past one assertion lifetime of rows.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AssertionReplayStore } from "../../src/oauth/assertionReplay.js";
import { oauthDatabase } from "../../src/oauth/database.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const IDP = "https://idp.example.com";

function suite(
  name: string,
  open: () => Promise<{ a: Store; b: Store; cleanup(): Promise<void> }>,
  skip?: string | false,
) {
  describe(`assertion replay store on ${name}`, { skip: skip || false }, () => {
    let a: Store;
    let b: Store;
    let cleanup: () => Promise<void>;
    let clock = Date.now();
    const now = () => clock;
    before(async () => {
      ({ a, b, cleanup } = await open());
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await cleanup?.();
    });

    it("claims a jti once; the same jti from another issuer is another assertion", async () => {
      const replay = new AssertionReplayStore(oauthDatabase(a), now);
      const jti = randomUUID();
      assert.equal(await replay.claim(IDP, jti, clock + 60_000), true);
      assert.equal(await replay.claim(IDP, jti, clock + 60_000), false);
      assert.equal(await replay.claim("https://other-idp.example.com", jti, clock + 60_000), true);
    });

    it("rejects-replayed-jti across connections racing: exactly one claim wins", async () => {
      const stores = [a, b].map((s) => new AssertionReplayStore(oauthDatabase(s), now));
      const jti = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (stores[i % 2] as AssertionReplayStore).claim(IDP, jti, clock + 60_000),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1, JSON.stringify(results));
    });

    it("reclaims an expired row and purges expired rows (the table stays bounded)", async () => {
      const replay = new AssertionReplayStore(oauthDatabase(a), now);
      const jti = randomUUID();
      assert.equal(await replay.claim(IDP, jti, clock + 1_000), true);
      clock += 2_000;
      assert.equal(
        await replay.claim(IDP, jti, clock + 1_000),
        true,
        "past its expiry the row no longer blocks",
      );
      for (let i = 0; i < 5; i++) await replay.claim(IDP, randomUUID(), clock + 500);
      clock += 10_000;
      assert.ok((await replay.purgeExpired()) >= 6);
      const left = await oauthDatabase(a)
        .selectFrom("oauth_assertion_replay")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("expires_at", "<", clock)
        .executeTakeFirstOrThrow();
      assert.equal(Number(left.n), 0);
    });
  });
}

suite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-assertion-replay-"));
  const file = join(dir, "db.sqlite");
  const a = await openStore(file);
  await a.migrate();
  return { a, b: await openStore(file), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

suite(
  "PostgreSQL",
  async () => {
    const database = await createTestDatabase();
    const a = await openStore(database.url);
    await a.migrate();
    return { a, b: await openStore(database.url), cleanup: () => database.drop() };
  },
  await postgresSkip(),
);
