/**
 * Finding and revoking what one person holds at the built-in authorization server
 * (src/oauth/accountGrants.ts), over artefacts written through the real storage adapter
 * (sealed payloads, hashed ids): revoking one user's consent to one client takes that grant
 * and the tokens issued under it and nothing of another client or another user; revoking
 * everything also ends the user's sign-in sessions; consents are listed with the client's
 * registered name. Also the account edits of src/oauth/users.ts (groups, password, disabled).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { accountConsents, revokeAccountGrants } from "../../src/oauth/accountGrants.js";
import { sqlAdapter } from "../../src/oauth/adapter.js";
import { oauthDatabase } from "../../src/oauth/database.js";
import { rememberConsent } from "../../src/oauth/interactions.js";
import { artefactKeys } from "../../src/oauth/storedArtefacts.js";
import {
  addUser,
  setUserDisabled,
  setUserGroups,
  setUserPassword,
  UnknownUser,
  UserError,
  verifyPassword,
} from "../../src/oauth/users.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";

const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe("account grants and edits (SQLite)", () => {
  let dir: string;
  let store: Store;
  const keys = artefactKeys(randomBytes(32));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "portcullis-account-grants-"));
    store = await openStore(join(dir, "p.db"));
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const Adapter = () => sqlAdapter(oauthDatabase(store), keys);
  /** A grant of `accountId` to `clientId`, an access token under it and the remembered consent. */
  const grant = async (accountId: string, clientId: string) => {
    const A = Adapter();
    const grantId = randomBytes(8).toString("hex");
    const tokenId = randomBytes(8).toString("hex");
    await new A("Grant").upsert(grantId, { accountId, clientId }, 3600);
    await new A("AccessToken").upsert(tokenId, { accountId, clientId, grantId }, 300);
    await rememberConsent(oauthDatabase(store), accountId, clientId, grantId);
    return { grantId, tokenId };
  };
  const exists = async (model: string, id: string) => (await new (Adapter())(model).find(id)) !== undefined;

  it("revokes one client's grant and its tokens for one user, nothing else", async () => {
    const aliceX = await grant("u_alice", "client-x");
    const aliceY = await grant("u_alice", "client-y");
    const bobX = await grant("u_bob", "client-x");
    await new (Adapter())("Client").upsert("client-x", { client_id: "client-x", client_name: "Agent X" });

    const consents = await accountConsents(store, keys, "u_alice");
    assert.deepEqual(consents.map((c) => [c.clientId, c.clientName]).sort(), [
      ["client-x", "Agent X"],
      ["client-y", null],
    ]);

    const r = await revokeAccountGrants(store, keys, "u_alice", "client-x");
    assert.deepEqual(r, { grants: 1, consents: 1 });
    assert.equal(await exists("Grant", aliceX.grantId), false);
    assert.equal(await exists("AccessToken", aliceX.tokenId), false);
    assert.equal(await exists("Grant", aliceY.grantId), true, "another client of the same user");
    assert.equal(await exists("AccessToken", bobX.tokenId), true, "the same client of another user");
    assert.deepEqual(
      (await accountConsents(store, keys, "u_alice")).map((c) => c.clientId),
      ["client-y"],
    );
  });

  it("revokes every grant and sign-in session of a user", async () => {
    const carolX = await grant("u_carol", "client-x");
    const carolZ = await grant("u_carol", "client-z");
    const daveZ = await grant("u_dave", "client-z");
    const A = Adapter();
    await new A("Session").upsert("sess-carol", { accountId: "u_carol", uid: "uid-c" }, 3600);
    await new A("Session").upsert("sess-dave", { accountId: "u_dave", uid: "uid-d" }, 3600);
    const r = await revokeAccountGrants(store, keys, "u_carol");
    assert.deepEqual(r, { grants: 2, consents: 2 });
    for (const g of [carolX, carolZ]) {
      assert.equal(await exists("Grant", g.grantId), false);
      assert.equal(await exists("AccessToken", g.tokenId), false);
    }
    assert.equal(await exists("Session", "sess-carol"), false);
    assert.equal(await exists("Session", "sess-dave"), true);
    assert.equal(await exists("AccessToken", daveZ.tokenId), true);
  });

  it("edits an account: groups, password, disabled; bad input and unknown users are UserErrors", async () => {
    const db = oauthDatabase(store);
    await addUser(db, { username: "erin", password: "first password" }, FAST);
    assert.deepEqual((await setUserGroups(db, "erin", ["a", "b", "a"])).groups, ["a", "b"]);
    await assert.rejects(setUserGroups(db, "erin", ["has space"]), UserError);
    await assert.rejects(setUserGroups(db, "nobody", []), UnknownUser);
    await setUserPassword(db, "erin", "second password", FAST);
    assert.equal(await verifyPassword(db, "erin", "first password"), null);
    assert.ok(await verifyPassword(db, "erin", "second password"));
    await assert.rejects(setUserPassword(db, "erin", "short", FAST), /at least 8/);
    assert.equal((await setUserDisabled(db, "erin", true)).changed, true);
    assert.equal((await setUserDisabled(db, "erin", true)).changed, false);
    assert.equal(
      await verifyPassword(db, "erin", "second password"),
      null,
      "a disabled account cannot sign in",
    );
    assert.equal((await setUserDisabled(db, "erin", false)).changed, true);
    assert.ok(await verifyPassword(db, "erin", "second password"));
  });
});
