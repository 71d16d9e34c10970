/**
 * Federated users in the authorization server's store, on SQLite and PostgreSQL: the account
 * id is qualified by the upstream issuer, email and groups follow the IdP at each sign-in, a
 * disabled account stays disabled, and no password ever signs a federated account in.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { oauthDatabase } from "../../src/oauth/database.js";
import { federatedAccountId, upsertFederatedUser } from "../../src/oauth/federatedSignIn.js";
import type { FederatedIdentity } from "../../src/oauth/federation.js";
import { findUser, verifyPassword } from "../../src/oauth/users.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

function identity(issuer: string, subject: string, email: string, groups: string[]): FederatedIdentity {
  return { id: `${issuer}#${subject}`, issuer, subject, email, groups };
}

function suite(
  name: string,
  open: () => Promise<{ store: Store; cleanup(): Promise<void> }>,
  skip?: string | false,
) {
  describe(`federated accounts on ${name}`, { skip: skip || false }, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    it("keeps one account per issuer and subject, refreshed from the IdP at each sign-in", async () => {
      const db = oauthDatabase(store);
      const a = identity("https://idp-a.example.com", "user-1", "one@example.com", ["staff"]);
      const id = await upsertFederatedUser(db, a);
      assert.equal(id, federatedAccountId(a));
      assert.match(id ?? "", /^fed:[A-Za-z0-9_-]{16}#user-1$/);
      assert.equal(
        await upsertFederatedUser(db, { ...a, email: "renamed@example.com", groups: ["admins"] }),
        id,
      );
      const user = await findUser(db, id as string);
      assert.equal(user?.email, "renamed@example.com");
      assert.deepEqual(user?.groups, ["admins"]);
      // The same subject at another issuer is another person.
      const b = identity("https://idp-b.example.com", "user-1", "other@example.com", []);
      assert.notEqual(await upsertFederatedUser(db, b), id);
    });

    it("refuses a disabled federated account and never accepts a password for one", async () => {
      const db = oauthDatabase(store);
      const who = identity("https://idp-a.example.com", "user-2", "two@example.com", []);
      const id = (await upsertFederatedUser(db, who)) as string;
      assert.equal(await verifyPassword(db, id, "federated"), null);
      await db.updateTable("oauth_users").set({ disabled_at: Date.now() }).where("id", "=", id).execute();
      assert.equal(await upsertFederatedUser(db, who), null);
    });
  });
}

suite("SQLite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-fed-accounts-"));
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
