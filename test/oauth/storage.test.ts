/**
 * The authorization server's storage on both SQLite and PostgreSQL (migration 002_oauth):
 * the oidc-provider adapter (grant-wide revocation, consumption, expiry), signing keys sealed
 * at rest and rotated with an overlap, and local users with scrypt hashes; artefacts kept as
 * keyed hashes and sealed payloads (a copy of the store opens nothing), rows of earlier
 * versions converted, and unused registered clients expiring.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { purgeExpired, sqlAdapter } from "../../src/oauth/adapter.js";
import { oauthDatabase } from "../../src/oauth/database.js";
import { protectLegacyArtefacts } from "../../src/oauth/legacyArtefacts.js";
import { loadSigningKeys, rotateSigningKeys } from "../../src/oauth/signingKeys.js";
import { artefactKeys, lookupHash } from "../../src/oauth/storedArtefacts.js";
import { addUser, listUsers, removeUser, verifyPassword } from "../../src/oauth/users.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const KEYS = artefactKeys(randomBytes(32));

function suite(
  name: string,
  open: () => Promise<{ store: Store; cleanup(): Promise<void> }>,
  skip?: string | false,
) {
  describe(`OAuth storage on ${name}`, { skip: skip || false }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    it("stores, consumes, expires and revokes artefacts by grant", async () => {
      const db = oauthDatabase(store);
      const Adapter = sqlAdapter(db, KEYS);
      const codes = new Adapter("AuthorizationCode");
      const tokens = new Adapter("RefreshToken");
      await codes.upsert("c1", { grantId: "g1", uid: "u1", kind: "AuthorizationCode" }, 60);
      await tokens.upsert("r1", { grantId: "g1", kind: "RefreshToken" }, 60);
      await tokens.upsert("r2", { grantId: "g2", kind: "RefreshToken" }, 60);
      assert.deepEqual(await codes.find("c1"), { grantId: "g1", uid: "u1", kind: "AuthorizationCode" });
      assert.equal((await codes.findByUid("u1"))?.grantId, "g1");
      await codes.consume("c1");
      assert.equal(typeof (await codes.find("c1"))?.consumed, "number");
      await tokens.revokeByGrantId("g1");
      assert.equal(await tokens.find("r1"), undefined);
      assert.notEqual(await tokens.find("r2"), undefined);
      await tokens.upsert("r3", { grantId: "g3" }, -1);
      assert.equal(await tokens.find("r3"), undefined, "expired artefacts are invisible");
      await tokens.destroy("r2");
      assert.equal(await tokens.find("r2"), undefined);
    });

    it("keeps no token, code, session id or client secret readable in a copy of the store", async () => {
      const db = oauthDatabase(store);
      const Adapter = sqlAdapter(db, KEYS);
      const refresh = `rt-${randomBytes(16).toString("base64url")}`;
      const grant = `gr-${randomBytes(16).toString("base64url")}`;
      const uid = `ui-${randomBytes(16).toString("base64url")}`;
      const secret = `cs-${randomBytes(16).toString("base64url")}`;
      const clientId = `cl-${randomBytes(16).toString("base64url")}`;
      await new Adapter("RefreshToken").upsert(refresh, { jti: refresh, grantId: grant, uid }, 60);
      await new Adapter("Client").upsert(clientId, { client_id: clientId, client_secret: secret });
      const dump = JSON.stringify(await db.selectFrom("oauth_payloads").selectAll().execute());
      for (const clear of [refresh, grant, uid, secret, clientId]) assert.ok(!dump.includes(clear), clear);
      // The server still finds them by their clear values.
      assert.equal((await new Adapter("RefreshToken").find(refresh))?.jti, refresh);
      assert.equal((await new Adapter("RefreshToken").findByUid(uid))?.grantId, grant);
      assert.equal((await new Adapter("Client").find(clientId))?.client_secret, secret);
      // Without the server secret nothing opens, not even by the stored (hashed) id.
      const Other = sqlAdapter(db, artefactKeys(randomBytes(32)));
      assert.equal(await new Other("RefreshToken").find(refresh), undefined);
      const row = await db
        .selectFrom("oauth_payloads")
        .select("id")
        .where("model", "=", "RefreshToken")
        .executeTakeFirstOrThrow();
      assert.equal(await new Adapter("RefreshToken").find(row.id), undefined, "the stored id is no token");
      await new Adapter("RefreshToken").revokeByGrantId(grant);
      assert.equal(await new Adapter("RefreshToken").find(refresh), undefined);
    });

    it("hashes and seals rows stored in clear by earlier versions, once", async () => {
      const db = oauthDatabase(store);
      const legacy = (
        model: string,
        id: string,
        payload: Record<string, unknown>,
        expiresAt: number | null,
      ) =>
        db
          .insertInto("oauth_payloads")
          .values({
            model,
            id,
            payload: JSON.stringify(payload),
            grant_id: typeof payload.grantId === "string" ? payload.grantId : null,
            uid: null,
            user_code: null,
            expires_at: expiresAt,
            consumed_at: null,
          })
          .execute();
      const refresh = `old-${randomBytes(16).toString("base64url")}`;
      const clientId = `old-${randomBytes(16).toString("base64url")}`;
      await legacy("RefreshToken", refresh, { jti: refresh, grantId: "old-grant" }, Date.now() + 60_000);
      await legacy("Client", clientId, { client_id: clientId, client_secret: "old-secret" }, null);
      assert.equal(await protectLegacyArtefacts(db, KEYS), 2);
      assert.equal(await protectLegacyArtefacts(db, KEYS), 0, "already protected");
      const dump = JSON.stringify(await db.selectFrom("oauth_payloads").selectAll().execute());
      for (const clear of [refresh, clientId, "old-secret", "old-grant"])
        assert.ok(!dump.includes(clear), clear);
      const Adapter = sqlAdapter(db, KEYS);
      assert.equal((await new Adapter("RefreshToken").find(refresh))?.grantId, "old-grant");
      assert.equal((await new Adapter("Client").find(clientId))?.client_secret, "old-secret");
      const client = await db
        .selectFrom("oauth_payloads")
        .select("expires_at")
        .where("model", "=", "Client")
        .where("id", "=", lookupHash(KEYS, clientId))
        .executeTakeFirstOrThrow();
      assert.notEqual(client.expires_at, null, "a registration that never expired now expires when unused");
    });

    it("expires a registered client left unused, and pushes back the expiry of one in use (DCR clients never expiring)", async () => {
      const db = oauthDatabase(store);
      let clock = Date.now();
      const day = 86_400_000;
      const Adapter = sqlAdapter(db, KEYS, { now: () => clock, unusedClientTtlSeconds: 30 * 86_400 });
      const used = `used-${randomBytes(8).toString("hex")}`;
      const idle = `idle-${randomBytes(8).toString("hex")}`;
      await new Adapter("Client").upsert(used, { client_id: used });
      await new Adapter("Client").upsert(idle, { client_id: idle });
      for (let i = 0; i < 4; i++) {
        clock += 10 * day;
        assert.ok(await new Adapter("Client").find(used), `used client alive on day ${(i + 1) * 10}`);
      }
      assert.equal(await new Adapter("Client").find(idle), undefined, "unused for 40 days: gone");
      assert.ok(await new Adapter("Client").find(used));
      assert.ok((await purgeExpired(db, clock)) >= 1);
    });

    it("generates signing keys once, sealed, and keeps retired keys during the overlap", async () => {
      const db = oauthDatabase(store);
      const secret = randomBytes(32);
      const first = await loadSigningKeys(db, secret);
      assert.deepEqual(first.map((k) => k.jwk.alg).sort(), ["ES256", "RS256"]);
      const again = await loadSigningKeys(db, secret);
      assert.deepEqual(
        again.map((k) => k.kid),
        first.map((k) => k.kid),
      );
      const rows = await db.selectFrom("oauth_signing_keys").selectAll().execute();
      for (const row of rows)
        assert.doesNotMatch(row.jwk_encrypted, /"d"/, "private key material is encrypted");
      await assert.rejects(loadSigningKeys(db, randomBytes(32)), /server secret differs/);

      const { retired, created } = await rotateSigningKeys(db, secret, { overlapSeconds: 3600 });
      assert.deepEqual(retired.sort(), first.map((k) => k.kid).sort());
      const after = await loadSigningKeys(db, secret, { overlapSeconds: 3600 });
      assert.deepEqual(
        after
          .slice(0, 2)
          .map((k) => k.kid)
          .sort(),
        created.sort(),
        "new keys sign first",
      );
      assert.equal(after.length, 4, "retired keys are still published");
      const later = await loadSigningKeys(db, secret, {
        overlapSeconds: 3600,
        now: Date.now() + 2 * 3600_000,
      });
      assert.equal(later.length, 2, "retired keys leave after the overlap");
    });

    // The comparison's constant time (timingSafeEqual, a decoy hash for unknown users) is not a
    // property a test can observe without a clock; this checks the outcomes only.
    it("adds, verifies (wrong password, unknown user and disabled user all refused alike), lists and removes users", async () => {
      const db = oauthDatabase(store);
      await addUser(db, { username: "bob", password: "a long password", groups: ["ops"] }, FAST);
      await assert.rejects(
        addUser(db, { username: "bob", password: "another password" }, FAST),
        /already exists/,
      );
      await assert.rejects(addUser(db, { username: "eve", password: "short" }, FAST), /at least 8/);
      const row = await db
        .selectFrom("oauth_users")
        .selectAll()
        .where("username", "=", "bob")
        .executeTakeFirstOrThrow();
      assert.match(row.password_hash, /^scrypt\$1024\$8\$1\$/);
      assert.equal((await verifyPassword(db, "bob", "a long password"))?.groups[0], "ops");
      assert.equal(await verifyPassword(db, "bob", "wrong password"), null);
      assert.equal(await verifyPassword(db, "nobody", "a long password"), null);
      await db
        .updateTable("oauth_users")
        .set({ disabled_at: Date.now() })
        .where("username", "=", "bob")
        .execute();
      assert.equal(await verifyPassword(db, "bob", "a long password"), null, "disabled users cannot sign in");
      assert.deepEqual(
        (await listUsers(db)).map((u) => u.username),
        ["bob"],
      );
      assert.equal(await removeUser(db, "bob"), true);
      assert.equal(await removeUser(db, "bob"), false);
    });
  });
}

suite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-oauth-store-"));
  return {
    store: await openStore(join(dir, "db.sqlite")),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

const pgSkip = await postgresSkip();
suite(
  "PostgreSQL",
  async () => {
    const database = await createTestDatabase();
    return { store: await openStore(database.url), cleanup: () => database.drop() };
  },
  pgSkip,
);
