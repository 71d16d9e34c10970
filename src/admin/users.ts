/**
 * Local accounts of the built-in authorization server, as `portcullis users …` and the
 * console's Users page manage them: add (with a generated password unless one is given),
 * list, find, remove; changes audited through the caller's {@link AdminAudit}. Password
 * hashing and the account rules are ../oauth/users.ts.
 */
import { randomBytes } from "node:crypto";
import { oauthDatabase } from "../oauth/database.js";
import {
  removeUser as deleteUser,
  addUser as insertUser,
  type LocalUser,
  findUser as readUser,
  listUsers as readUsers,
} from "../oauth/users.js";
import type { Store } from "../store/types.js";
import type { AdminAudit } from "./actions.js";

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

/** Removes an account by username and records it; false (nothing recorded) when there is none. */
export async function removeUser(store: Store, username: string, audit: AdminAudit): Promise<boolean> {
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
