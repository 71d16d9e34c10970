/**
 * The owner of a task created by an operator (`portcullis tasks start --owner …`), named the
 * way the audit trail names principals, resolved from the store into the Principal the task
 * service mints for (src/tasks/service.ts). A task never holds more than its owner, so the
 * owner is built from what the store says that credential may do:
 *
 * - `key:<id>`: an API key, which must exist and be live; its scopes, environment and expiry
 *   (the principal the keyring builds on the request path: src/tasks/owners.ts).
 * - `user:<username>` (or its principal id `oauth:<issuer>#<user id>`): a local account of the
 *   built-in authorization server, not disabled; the principal its access tokens carry, with
 *   its groups but **no OAuth scopes**: the person granted none here (no consent was asked),
 *   so policies that require a writing scope (the default pack's) let an operator mint only
 *   read-tier tasks for a person. People mint wider tasks themselves, by RFC 8693 token
 *   exchange with their own token.
 * - `client:<client id>` (or `oauth:<issuer>#<client id>`): a machine client of the built-in
 *   authorization server, not revoked or expired; its servers and scopes.
 * - `spiffe://<trust domain>/<path>`: a workload (SPIFFE ID, SPIFFE-ID §2), syntax-checked.
 *   Nothing in the store vouches for a workload, so it owns tasks on every server the policy
 *   lets a workload reach, and the task lives at most its lifetime.
 *
 * The built-in issuer is the gateway's public base URL; it must be known from the config
 * (`publicUrl`, or a fixed `listen.port`), as it is for task tokens themselves.
 */
import { KeyInputError } from "../authn/keyLifecycle.js";
import type { Config } from "../config/schema.js";
import type { Principal } from "../core/principal.js";
import { compileScopes } from "../core/scope.js";
import { oauthDatabase } from "../oauth/database.js";
import { findUserByName, type LocalUser, findUser as readUser } from "../oauth/users.js";
import type { Store } from "../store/types.js";
import { keyOwnerPrincipal } from "../tasks/owners.js";
import { findClient } from "./clients.js";

/** The forms `--owner` accepts, for messages. */
export const OWNER_FORMS =
  "key:<key id>, user:<username>, client:<client id>, oauth:<issuer>#<user or client id>, or a SPIFFE ID (spiffe://<trust domain>/<path>)";

/** An owner named, found, and live: the principal to mint for. */
export interface ResolvedOwner {
  ok: true;
  principal: Principal;
}

/** An owner named and found whose credential is no longer live: a refusal (exit 1). */
export interface DeadOwner {
  ok: false;
  reason: string;
}

const ALL_SERVERS = compileScopes(["*"]);
const NO_SCOPES: ReadonlySet<string> = new Set();

/** SPIFFE-ID §2.1–2.2: lowercase trust domain, non-empty path segments, no `.`/`..`, query, fragment. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function isSpiffeId(value: string): boolean {
  return (
    value.length <= 2048 &&
    SPIFFE_ID.test(value) &&
    !value
      .slice("spiffe://".length)
      .split("/")
      .some((seg, i) => i > 0 && (seg === "." || seg === ".."))
  );
}

/**
 * A person or workload named here presents no credential of their own: the operator vouches
 * for them, for at most one task's longest lifetime (so policies that refuse credentials
 * without expiry, and the task's own bound, hold).
 */
function vouchedUntil(config: Config, now: Date): Date {
  return new Date(now.getTime() + config.tasks.maxTtlSeconds * 1000);
}

function userPrincipal(user: LocalUser, issuer: string, config: Config, now: Date): Principal {
  return {
    id: `oauth:${issuer}#${user.id}`,
    kind: "user",
    method: "oauth",
    name: user.email ?? user.username,
    environment: config.environment,
    credentialId: null,
    scopes: ALL_SERVERS,
    oauthScopes: NO_SCOPES,
    groups: user.groups,
    issuedAt: now,
    expiresAt: vouchedUntil(config, now),
  };
}

/**
 * The principal `--owner` names. Throws KeyInputError (a usage error, exit 2) when the name
 * has no known form or names nothing; returns `{ ok: false }` when the credential it names is
 * revoked, disabled or expired.
 */
export async function resolveTaskOwner(
  store: Store,
  config: Config,
  issuer: string,
  name: string,
  now: Date = new Date(),
): Promise<ResolvedOwner | DeadOwner> {
  const builtin = config.oauth?.mode === "builtin";
  const needsBuiltin = (what: string) => {
    if (!builtin)
      throw new KeyInputError(
        `--owner ${name}: ${what} belong to the built-in authorization server, and this config has no oauth.mode: builtin`,
      );
  };
  const user = async (lookup: () => Promise<LocalUser | undefined>) => {
    const found = await lookup();
    if (found === undefined) return undefined;
    if (found.disabledAt !== null)
      return { ok: false as const, reason: `user ${found.username} is disabled` };
    return { ok: true as const, principal: userPrincipal(found, issuer, config, now) };
  };
  const client = async (clientId: string): Promise<ResolvedOwner | DeadOwner | undefined> => {
    const c = await findClient(store, clientId);
    if (c === undefined) return undefined;
    if (c.revokedAt !== null) return { ok: false, reason: `machine client ${clientId} is revoked` };
    if (c.expiresAt.getTime() <= now.getTime())
      return { ok: false, reason: `machine client ${clientId} expired at ${c.expiresAt.toISOString()}` };
    return {
      ok: true,
      principal: {
        id: `oauth:${issuer}#${c.clientId}`,
        kind: "service",
        method: "oauth",
        name: c.name,
        environment: config.environment,
        credentialId: c.clientId,
        scopes: compileScopes(c.servers),
        oauthScopes: new Set(c.scopes),
        groups: [],
        issuedAt: c.createdAt,
        expiresAt: c.expiresAt,
      },
    };
  };

  if (name.startsWith("key:")) {
    const key = await keyOwnerPrincipal(store, name);
    if (key === null) throw new KeyInputError(`--owner ${name}: no API key with id ${name.slice(4)}`);
    if (key.revokedAt !== null)
      return { ok: false, reason: `API key ${name.slice(4)} was revoked at ${key.revokedAt.toISOString()}` };
    const expires = key.principal.expiresAt;
    if (expires !== null && expires.getTime() <= now.getTime())
      return { ok: false, reason: `API key ${name.slice(4)} expired at ${expires.toISOString()}` };
    return { ok: true, principal: key.principal };
  }
  if (name.startsWith("user:")) {
    needsBuiltin("users");
    const username = name.slice("user:".length);
    const found = await user(() => findUserByName(oauthDatabase(store), username));
    if (found === undefined) throw new KeyInputError(`--owner ${name}: no user named ${username}`);
    return found;
  }
  if (name.startsWith("client:")) {
    needsBuiltin("machine clients");
    const found = await client(name.slice("client:".length));
    if (found === undefined) throw new KeyInputError(`--owner ${name}: no machine client ${name.slice(7)}`);
    return found;
  }
  if (name.startsWith("oauth:")) {
    const prefix = `oauth:${issuer}#`;
    if (!builtin || !name.startsWith(prefix))
      throw new KeyInputError(
        `--owner ${name}: only principals of the built-in authorization server (${prefix}<id>) can be resolved here; name a user as user:<username>`,
      );
    const id = name.slice(prefix.length);
    const found = (await user(() => readUser(oauthDatabase(store), id))) ?? (await client(id));
    if (found === undefined)
      throw new KeyInputError(`--owner ${name}: no user or machine client with id ${id}`);
    return found;
  }
  if (name.startsWith("spiffe://")) {
    if (!isSpiffeId(name))
      throw new KeyInputError(
        `--owner ${name}: not a SPIFFE ID (spiffe://<lowercase trust domain>/<path>, no query or fragment)`,
      );
    return {
      ok: true,
      principal: {
        id: name,
        kind: "workload",
        method: "jwt_svid",
        name,
        environment: config.environment,
        credentialId: null,
        scopes: ALL_SERVERS,
        oauthScopes: null,
        groups: [],
        issuedAt: now,
        expiresAt: vouchedUntil(config, now),
      },
    };
  }
  throw new KeyInputError(`--owner '${name}': name the owner as ${OWNER_FORMS}`);
}
