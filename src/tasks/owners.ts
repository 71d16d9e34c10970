/**
 * A task acts for its owner, so it is refused once the owner's own credential is: the
 * verifier asks {@link OwnerLiveness} on every use (memory only in the steady state).
 *
 * Covered here: an API key owner (the keyring: revoked, expired or unknown → refused) and a
 * task owner (a task minted by a task token: the parent task must still be live). Other owners
 * are judged by checkers the composition root adds (an OAuth owner's grant or machine client at
 * the built-in authorization server); an OAuth owner no checker judges is bounded by its
 * token's expiry only (a task never outlives the owner credential's `exp`).
 */
import { type Keyring, keyPrincipal } from "../authn/keyring.js";
import type { Principal } from "../core/principal.js";
import type { Store, StoredTaskOwner } from "../store/types.js";

/**
 * `final`: the owner's credential is over for good (revoked, expired), so the task may be
 * ended; otherwise (e.g. a key this replica has not heard of yet) the token is only refused.
 */
export type OwnerStatus = { ok: true } | { ok: false; reason: string; final?: boolean };

/** Judges an owner's credential; null when this checker does not know that kind of owner. */
export type OwnerCheck = (owner: StoredTaskOwner, now: number) => OwnerStatus | null;

/** API key owners: the keyring's view, which the authenticate stage refreshed first. */
export function keyOwnerCheck(keyring: Pick<Keyring, "keyStatus">): OwnerCheck {
  return (owner, now) => {
    if (owner.method !== "api_key") return null;
    if (owner.credentialId === null) return { ok: false, reason: "API key owner without a key id" };
    return keyring.keyStatus(owner.credentialId, now);
  };
}

/** The first checker's answer; an API key owner nobody judges is refused (fail closed). */
export function ownerStatus(checks: readonly OwnerCheck[], owner: StoredTaskOwner, now: number): OwnerStatus {
  for (const check of checks) {
    const status = check(owner, now);
    if (status !== null) return status;
  }
  if (owner.method === "api_key") return { ok: false, reason: "no check of the owner's API key" };
  return { ok: true };
}

/**
 * The principal of an API key, as the keyring builds it, read from the store: the owner of a
 * task created outside the request path (`portcullis tasks start --owner key:<id>`). Null when
 * there is no such key; the caller decides what a revoked or expired key means (refused).
 */
export async function keyOwnerPrincipal(
  store: Store,
  ownerId: string,
): Promise<{ principal: Principal; revokedAt: Date | null } | null> {
  if (!ownerId.startsWith("key:")) return null;
  const record = await store.getKey(ownerId.slice("key:".length));
  if (record === undefined) return null;
  return { revokedAt: record.revokedAt, principal: keyPrincipal(record) };
}
