/**
 * Local accounts of the built-in authorization server, as `portcullis users …` and the
 * console's Users pages manage them: add (with a generated password unless one is given),
 * list, find, remove, set groups, reset a password, disable and enable, and the consents a
 * user gave to clients (list, revoke); every change audited through the caller's
 * {@link AdminAudit}. Password hashing and the account rules are ../oauth/users.ts; grants and
 * consents by account are ../oauth/accountGrants.ts.
 *
 * Disabling an account refuses its next sign-in (password check and oidc-provider's
 * `findAccount`, so refresh tokens are refused too) and revokes every grant it holds with the
 * tokens issued under them and its sign-in sessions: its access tokens are refused from the
 * next request on (the change feed reaches every replica), and its console session from the
 * next page (src/console/access.ts re-reads the account on every request).
 */
import { randomBytes } from "node:crypto";
import { type AccountConsent, accountConsents, revokeAccountGrants } from "../oauth/accountGrants.js";
import { oauthDatabase } from "../oauth/database.js";
import { artefactKeys } from "../oauth/storedArtefacts.js";
import {
  removeUser as deleteUser,
  findUserByName,
  addUser as insertUser,
  type LocalUser,
  findUser as readUser,
  listUsers as readUsers,
  setUserDisabled,
  setUserGroups,
  setUserPassword,
  UnknownUser,
  usersByIds,
} from "../oauth/users.js";
import type { Store } from "../store/types.js";
import type { AdminAudit } from "./actions.js";

export type { AccountConsent } from "../oauth/accountGrants.js";

/** A password for a generated account: 128 bits, URL-safe. */
export function generatePassword(): string {
  return randomBytes(16).toString("base64url");
}

/** Adds an account and records it; throws UserError (../oauth/users.ts) on bad input. */
export async function addUser(
  store: Store,
  input: { username: string; password: string; email: string | null; groups: string[] },
  audit: AdminAudit,
): Promise<LocalUser> {
  const user = await insertUser(oauthDatabase(store), input);
  await audit({ kind: "user.added", user });
  return user;
}

/**
 * Removes an account by username, after revoking what it holds at the authorization server (as
 * {@link disableUser} does: its tokens must not outlive it), and records it; false (nothing
 * recorded) when there is none.
 */
export async function removeUser(
  store: Store,
  secret: Buffer,
  username: string,
  audit: AdminAudit,
): Promise<boolean> {
  const user = await findUserByName(oauthDatabase(store), username);
  if (user === undefined) return false;
  await revokeAccountGrants(store, artefactKeys(secret), user.id);
  if (!(await deleteUser(oauthDatabase(store), username))) return false;
  await audit({ kind: "user.removed", username });
  return true;
}

/** Every account, by username. */
export function listUsers(store: Store): Promise<LocalUser[]> {
  return readUsers(oauthDatabase(store));
}

/** One account by id (the `sub` of a sign-in). */
export function findUser(store: Store, id: string): Promise<LocalUser | undefined> {
  return readUser(oauthDatabase(store), id);
}

/** One account by username; throws UnknownUser. */
export async function userNamed(store: Store, username: string): Promise<LocalUser> {
  const user = await findUserByName(oauthDatabase(store), username);
  if (user === undefined) throw new UnknownUser(username);
  return user;
}

/** The accounts with these ids, by id, read in one query (names shown instead of ids). */
export async function usersById(store: Store, ids: Iterable<string>): Promise<Map<string, LocalUser>> {
  const users = await usersByIds(oauthDatabase(store), [...ids]);
  return new Map(users.map((u) => [u.id, u]));
}

/** Replaces the account's groups and records it (with the groups it had). */
export async function setGroups(
  store: Store,
  username: string,
  groups: string[],
  audit: AdminAudit,
): Promise<LocalUser> {
  const before = await userNamed(store, username);
  const user = await setUserGroups(oauthDatabase(store), username, groups);
  await audit({ kind: "user.groups_set", user, previous: before.groups });
  return user;
}

/**
 * Sets the account's password — `password` as given, or a generated one when it is null — and
 * records it (never the password). Returns the password to show once when it was generated.
 */
export async function resetPassword(
  store: Store,
  username: string,
  password: string | null,
  audit: AdminAudit,
): Promise<{ user: LocalUser; generated: string | null }> {
  const generated = password === null ? generatePassword() : null;
  const user = await setUserPassword(oauthDatabase(store), username, password ?? (generated as string));
  await audit({ kind: "user.password_reset", user, generated: generated !== null });
  return { user, generated };
}

/**
 * Disables the account and revokes everything it holds at the authorization server (see the
 * module comment); recorded. Disabling a disabled account changes nothing and records nothing.
 */
export async function disableUser(
  store: Store,
  secret: Buffer,
  username: string,
  audit: AdminAudit,
): Promise<{ user: LocalUser; changed: boolean; grantsRevoked: number }> {
  const { user, changed } = await setUserDisabled(oauthDatabase(store), username, true);
  if (!changed) return { user, changed, grantsRevoked: 0 };
  const { grants } = await revokeAccountGrants(store, artefactKeys(secret), user.id);
  await audit({ kind: "user.disabled", user, grantsRevoked: grants });
  return { user, changed, grantsRevoked: grants };
}

/** Enables a disabled account (it may sign in again; nothing revoked comes back); recorded. */
export async function enableUser(
  store: Store,
  username: string,
  audit: AdminAudit,
): Promise<{ user: LocalUser; changed: boolean }> {
  const result = await setUserDisabled(oauthDatabase(store), username, false);
  if (result.changed) await audit({ kind: "user.enabled", user: result.user });
  return result;
}

/** The consents the account gave, newest first, with each client's name. */
export async function userConsents(
  store: Store,
  secret: Buffer,
  username: string,
): Promise<AccountConsent[]> {
  const user = await userNamed(store, username);
  return accountConsents(store, artefactKeys(secret), user.id);
}

/**
 * Forgets the account's consent to `clientId` and revokes the grants (with their tokens) it
 * holds for that client; the next authorization asks for consent again. Recorded; false, with
 * nothing recorded, when there was neither a consent nor a grant.
 */
export async function revokeConsent(
  store: Store,
  secret: Buffer,
  username: string,
  clientId: string,
  audit: AdminAudit,
): Promise<boolean> {
  const user = await userNamed(store, username);
  const { grants, consents } = await revokeAccountGrants(store, artefactKeys(secret), user.id, clientId);
  if (grants === 0 && consents === 0) return false;
  await audit({ kind: "user.consent_revoked", user, clientId, grantsRevoked: grants });
  return true;
}
