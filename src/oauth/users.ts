/**
 * Local user accounts for the embedded authorization server (the login behind
 * /oauth/interaction/:uid when no upstream identity provider is federated). Passwords are
 * hashed with scrypt (RFC 7914) with a per-user random salt; the cost parameters are kept
 * in the hash so they can be raised later without invalidating existing users. Verification
 * compares in constant time and spends the same work for an unknown user as for a known one.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { OAuthDatabase, OAuthUsersTable } from "./database.js";

export interface LocalUser {
  id: string;
  username: string;
  email: string | null;
  groups: string[];
  createdAt: Date;
  disabledAt: Date | null;
}

export interface NewLocalUser {
  username: string;
  password: string;
  email?: string | null;
  groups?: string[];
}

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** OWASP's minimum for scrypt is N=2^17 with r=8; 2^15 keeps a login under ~100 ms on small machines. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const USERNAME = /^[A-Za-z0-9._@+-]{1,128}$/;
const MIN_PASSWORD = 8;

export class UserError extends Error {
  override name = "UserError";
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return ["scrypt", params.N, params.r, params.p, salt.toString("base64url"), key.toString("base64url")].join(
    "$",
  );
}

/** Constant-time check of `password` against a stored `scrypt$N$r$p$salt$hash`. */
export async function checkPasswordHash(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || salt === undefined || hash === undefined) return false;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  if (![params.N, params.r, params.p].every((v) => Number.isSafeInteger(v) && v > 0)) return false;
  const expected = Buffer.from(hash, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), params);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Hash checked when the username is unknown, so the answer takes the same time. */
let decoy: Promise<string> | null = null;

function toUser(row: OAuthUsersTable): LocalUser {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    groups: JSON.parse(row.groups) as string[],
    createdAt: new Date(Number(row.created_at)),
    disabledAt: row.disabled_at === null ? null : new Date(Number(row.disabled_at)),
  };
}

export async function addUser(
  db: Kysely<OAuthDatabase>,
  user: NewLocalUser,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<LocalUser> {
  if (!USERNAME.test(user.username)) {
    throw new UserError("username must be 1-128 characters of letters, digits and . _ @ + -");
  }
  if (user.password.length < MIN_PASSWORD) {
    throw new UserError(`password must be at least ${MIN_PASSWORD} characters`);
  }
  const existing = await db
    .selectFrom("oauth_users")
    .select("id")
    .where("username", "=", user.username)
    .executeTakeFirst();
  if (existing !== undefined) throw new UserError(`user ${user.username} already exists`);
  const row: OAuthUsersTable = {
    id: `u_${randomBytes(12).toString("base64url")}`,
    username: user.username,
    password_hash: await hashPassword(user.password, params),
    email: user.email ?? null,
    groups: JSON.stringify(user.groups ?? []),
    created_at: Date.now(),
    disabled_at: null,
  };
  await db.insertInto("oauth_users").values(row).execute();
  return toUser(row);
}

export async function listUsers(db: Kysely<OAuthDatabase>): Promise<LocalUser[]> {
  const rows = await db.selectFrom("oauth_users").selectAll().orderBy("username").execute();
  return rows.map(toUser);
}

export async function findUser(db: Kysely<OAuthDatabase>, id: string): Promise<LocalUser | undefined> {
  const row = await db.selectFrom("oauth_users").selectAll().where("id", "=", id).executeTakeFirst();
  return row === undefined ? undefined : toUser(row);
}

/** Deletes the user; returns false when there is no such username. */
export async function removeUser(db: Kysely<OAuthDatabase>, username: string): Promise<boolean> {
  const res = await db.deleteFrom("oauth_users").where("username", "=", username).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

/** How a password sign-in ended; the user is known unless the username matches no account. */
export type PasswordCheck =
  | { outcome: "signed_in"; user: LocalUser }
  | { outcome: "wrong_password" | "account_disabled"; user: LocalUser }
  | { outcome: "unknown_user"; user: null };

/**
 * Checks a password sign-in and says why it failed (for the audit record only: the user is
 * told the same thing in every case). A disabled account is reported as such only when its
 * password was right, so the record does not tell a guesser's attempts apart by account state.
 */
export async function checkPassword(
  db: Kysely<OAuthDatabase>,
  username: string,
  password: string,
): Promise<PasswordCheck> {
  const row = await db
    .selectFrom("oauth_users")
    .selectAll()
    .where("username", "=", username)
    .executeTakeFirst();
  if (row === undefined) {
    decoy ??= hashPassword("decoy password, never matches");
    await checkPasswordHash(password, await decoy);
    return { outcome: "unknown_user", user: null };
  }
  const user = toUser(row);
  if (!(await checkPasswordHash(password, row.password_hash))) return { outcome: "wrong_password", user };
  if (row.disabled_at !== null) return { outcome: "account_disabled", user };
  return { outcome: "signed_in", user };
}

/** The user when the password matches and the account is enabled; null otherwise. */
export async function verifyPassword(
  db: Kysely<OAuthDatabase>,
  username: string,
  password: string,
): Promise<LocalUser | null> {
  const check = await checkPassword(db, username, password);
  return check.outcome === "signed_in" ? check.user : null;
}

/** A username as found, or UserError naming it. */
async function idOf(db: Kysely<OAuthDatabase>, username: string): Promise<string> {
  const row = await db
    .selectFrom("oauth_users")
    .select("id")
    .where("username", "=", username)
    .executeTakeFirst();
  if (row === undefined) throw new UnknownUser(username);
  return row.id;
}

/** No account has this username (the CLI exits 2, the console answers 404). */
export class UnknownUser extends UserError {
  constructor(readonly username: string) {
    super(`no user named ${username}`);
  }
}

export async function findUserByName(
  db: Kysely<OAuthDatabase>,
  username: string,
): Promise<LocalUser | undefined> {
  const row = await db
    .selectFrom("oauth_users")
    .selectAll()
    .where("username", "=", username)
    .executeTakeFirst();
  return row === undefined ? undefined : toUser(row);
}

/** The accounts with these ids (one query), for showing names instead of ids. */
export async function usersByIds(db: Kysely<OAuthDatabase>, ids: readonly string[]): Promise<LocalUser[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  const rows = await db.selectFrom("oauth_users").selectAll().where("id", "in", unique).execute();
  return rows.map(toUser);
}

const GROUP = /^[^\s,\p{Cc}]{1,128}$/u;

/** Replaces the account's groups; throws UnknownUser or UserError (a malformed group name). */
export async function setUserGroups(
  db: Kysely<OAuthDatabase>,
  username: string,
  groups: readonly string[],
): Promise<LocalUser> {
  const bad = groups.find((g) => !GROUP.test(g));
  if (bad !== undefined)
    throw new UserError(`group '${bad}' must be 1-128 characters without spaces or commas`);
  const id = await idOf(db, username);
  await db
    .updateTable("oauth_users")
    .set({ groups: JSON.stringify([...new Set(groups)]) })
    .where("id", "=", id)
    .execute();
  return (await findUser(db, id)) as LocalUser;
}

/** Replaces the account's password hash; throws UnknownUser or UserError (too short). */
export async function setUserPassword(
  db: Kysely<OAuthDatabase>,
  username: string,
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<LocalUser> {
  if (password.length < MIN_PASSWORD) {
    throw new UserError(`password must be at least ${MIN_PASSWORD} characters`);
  }
  const id = await idOf(db, username);
  await db
    .updateTable("oauth_users")
    .set({ password_hash: await hashPassword(password, params) })
    .where("id", "=", id)
    .execute();
  return (await findUser(db, id)) as LocalUser;
}

/**
 * Disables (sign-in refused, `findAccount` finds nobody) or enables the account; returns it and
 * whether anything changed. Throws UnknownUser.
 */
export async function setUserDisabled(
  db: Kysely<OAuthDatabase>,
  username: string,
  disabled: boolean,
  at: Date = new Date(),
): Promise<{ user: LocalUser; changed: boolean }> {
  const id = await idOf(db, username);
  const res = await db
    .updateTable("oauth_users")
    .set({ disabled_at: disabled ? at.getTime() : null })
    .where("id", "=", id)
    .where("disabled_at", disabled ? "is" : "is not", null)
    .executeTakeFirst();
  return { user: (await findUser(db, id)) as LocalUser, changed: res.numUpdatedRows > 0n };
}
