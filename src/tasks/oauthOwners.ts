/**
 * Liveness of OAuth owners at the built-in authorization server, judged in one batch each
 * time a replica reloads its live tasks (./liveTasks.ts: on every change the store's change
 * feed reports, which includes every grant revocation, user disabling and machine-client
 * revocation — they run through Store#mutateCredentials):
 * - a person's task, minted from an access token with a grant (the exchange passes
 *   `ownerGrantId`): dead once the grant is gone (revoked by RFC 7009, refresh-token reuse, the
 *   user disabled or their consent revoked) or expired;
 * - a machine client's task (`oauth:<issuer>#<client_id>`, client_credentials: no grant): dead
 *   once the client is revoked or expired.
 * The request path then reads the answer from memory.
 */
import type { Kysely } from "kysely";
import { type OAuthDatabase, oauthDatabase } from "../oauth/database.js";
import { isMachineClientId } from "../oauth/machineClients.js";
import { artefactKeys, lookupHash } from "../oauth/storedArtefacts.js";
import type { Store, TaskRecord } from "../store/types.js";

/** Why each task's owner is no longer live (task id → reason); tasks not named are live or not judged here. */
export type DeadOwners = (tasks: readonly TaskRecord[], at: number) => Promise<Map<string, string>>;

const BATCH = 500;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

export function oauthOwnerLiveness(store: Store, secret: Buffer, issuer: string): DeadOwners {
  const db: Kysely<OAuthDatabase> = oauthDatabase(store);
  const keys = artefactKeys(secret);
  const clientPrefix = `oauth:${issuer}#`;
  return async (tasks, at) => {
    const dead = new Map<string, string>();
    const byGrant = new Map<string, string[]>();
    const byClient = new Map<string, string[]>();
    for (const t of tasks) {
      if (t.owner.method !== "oauth") continue;
      const grant = t.owner.grantId ?? null;
      if (grant !== null) {
        byGrant.set(grant, [...(byGrant.get(grant) ?? []), t.id]);
        continue;
      }
      const clientId = t.owner.id.startsWith(clientPrefix) ? t.owner.id.slice(clientPrefix.length) : null;
      if (t.owner.kind === "service" && isMachineClientId(clientId))
        byClient.set(clientId, [...(byClient.get(clientId) ?? []), t.id]);
    }
    for (const part of chunks([...byGrant.keys()])) {
      const hashed = new Map(part.map((g) => [lookupHash(keys, g), g]));
      const rows = await db
        .selectFrom("oauth_payloads")
        .select(["id", "expires_at"])
        .where("model", "=", "Grant")
        .where("id", "in", [...hashed.keys()])
        .execute();
      const live = new Set(
        rows.filter((r) => r.expires_at === null || Number(r.expires_at) > at).map((r) => hashed.get(r.id)),
      );
      for (const g of part)
        if (!live.has(g))
          for (const id of byGrant.get(g) ?? []) dead.set(id, `owner's grant ${g} was revoked or expired`);
    }
    for (const part of chunks([...byClient.keys()])) {
      const rows = await db
        .selectFrom("oauth_machine_clients")
        .select(["client_id", "expires_at", "revoked_at"])
        .where("client_id", "in", part)
        .execute();
      const live = new Set(
        rows.filter((r) => r.revoked_at === null && Number(r.expires_at) > at).map((r) => r.client_id),
      );
      for (const c of part)
        if (!live.has(c))
          for (const id of byClient.get(c) ?? [])
            dead.set(id, `owner machine client ${c} was revoked or expired`);
    }
    return dead;
  };
}
