/**
 * Machine clients and user consents of the built-in authorization server, as the CLI's
 * `clients` commands and the console's clients page read and revoke them. Revocation is one
 * credential mutation announced on the change feed (../oauth/machineClients.ts), audited
 * through the caller's {@link AdminAudit}.
 */
import { oauthDatabase } from "../oauth/database.js";
import {
  findMachineClient,
  listMachineClients,
  type MachineClient,
  revokeMachineClient,
} from "../oauth/machineClients.js";
import { listUsers } from "../oauth/users.js";
import type { Store } from "../store/types.js";
import type { AdminAudit } from "./actions.js";

/** One user's standing consent to one client. */
export interface Consent {
  accountId: string;
  /** Null when the account no longer exists. */
  username: string | null;
  clientId: string;
  updatedAt: Date;
}

/** Every machine client, oldest first; never a secret. */
export function listClients(store: Store): Promise<MachineClient[]> {
  return listMachineClients(oauthDatabase(store));
}

/** One machine client, or undefined. */
export function findClient(store: Store, clientId: string): Promise<MachineClient | undefined> {
  return findMachineClient(oauthDatabase(store), clientId);
}

/**
 * Revokes a machine client (its tokens are refused from the next request on) and records it;
 * false, with nothing recorded, when it is unknown or already revoked.
 */
export async function revokeClient(store: Store, clientId: string, audit: AdminAudit): Promise<boolean> {
  if (!(await revokeMachineClient(store, clientId))) return false;
  await audit({ kind: "client.revoked", clientId });
  return true;
}

/** The most recently given consents, newest first, with the account's username. */
export async function listConsents(store: Store, limit: number): Promise<Consent[]> {
  const db = oauthDatabase(store);
  const [consents, users] = await Promise.all([
    db.selectFrom("oauth_consents").selectAll().orderBy("updated_at", "desc").limit(limit).execute(),
    listUsers(db),
  ]);
  const names = new Map(users.map((u) => [u.id, u.username]));
  return consents.map((c) => ({
    accountId: c.account_id,
    username: names.get(c.account_id) ?? null,
    clientId: c.client_id,
    updatedAt: new Date(Number(c.updated_at)),
  }));
}
