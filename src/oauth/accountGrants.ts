/**
 * What a person holds at the built-in authorization server, found by account: their grants
 * (each the parent of the access tokens, refresh tokens and codes issued under it), their
 * sign-in sessions, and the consents remembered for them per client (`oauth_consents`).
 *
 * Payloads are sealed and ids hashed (./storedArtefacts.ts), so the account of a grant is not
 * a column: finding a person's grants reads and unseals every live `Grant` row — an
 * administrator's action, not a request path. A grant's stored id is the same keyed hash its
 * tokens carry in `grant_id`, so revoking a grant is one DELETE of the grant and everything
 * issued under it (as oidc-provider's own revocation does, RFC 7009 §2.1), run through
 * Store#mutateCredentials: the change feed tells every replica, whose token verifiers then
 * re-check each token's grant on its next use (./builtinTokenVerifier.ts), so the access
 * tokens stop at once, not at their expiry.
 */
import type { Kysely } from "kysely";
import type { Store } from "../store/types.js";
import { type OAuthDatabase, oauthDatabase } from "./database.js";
import { type ArtefactKeys, isSealedPayload, lookupHash, unsealPayload } from "./storedArtefacts.js";

/** One user's standing consent to one client. */
export interface AccountConsent {
  accountId: string;
  clientId: string;
  /** The client's registered name (client_name, a machine client's name), or null when unknown. */
  clientName: string | null;
  updatedAt: Date;
}

function payloadOf(
  keys: ArtefactKeys,
  model: string,
  id: string,
  text: string,
): Record<string, unknown> | null {
  try {
    const json = isSealedPayload(text) ? unsealPayload(keys, model, id, text) : text;
    const parsed = JSON.parse(json) as unknown;
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null; // sealed under another secret: not a grant this server can honour either
  }
}

/** Stored ids of the account's grants (optionally only those for `clientId`) and sessions. */
async function artefactsOf(
  db: Kysely<OAuthDatabase>,
  keys: ArtefactKeys,
  accountId: string,
  clientId: string | null,
): Promise<{ grants: string[]; sessions: string[] }> {
  const rows = await db
    .selectFrom("oauth_payloads")
    .select(["model", "id", "payload"])
    .where("model", "in", clientId === null ? ["Grant", "Session"] : ["Grant"])
    .execute();
  const grants: string[] = [];
  const sessions: string[] = [];
  for (const row of rows) {
    const p = payloadOf(keys, row.model, row.id, row.payload);
    if (p === null || p.accountId !== accountId) continue;
    if (row.model === "Session") sessions.push(row.id);
    else if (clientId === null || p.clientId === clientId) grants.push(row.id);
  }
  return { grants, sessions };
}

/**
 * Revokes the account's grants (all, or only those for `clientId`) with every token and code
 * issued under them, and — for all clients — the account's sign-in sessions; forgets the
 * matching remembered consents, so the next authorization asks again. Announced on the change
 * feed. Returns how many grants went.
 */
export async function revokeAccountGrants(
  store: Store,
  keys: ArtefactKeys,
  accountId: string,
  clientId: string | null = null,
): Promise<{ grants: number; consents: number }> {
  const db = oauthDatabase(store);
  const found = await artefactsOf(db, keys, accountId, clientId);
  let consents = 0;
  await store.mutateCredentials(async (trx) => {
    let q = trx.deleteFrom("oauth_consents").where("account_id", "=", accountId);
    if (clientId !== null) q = q.where("client_id", "=", clientId);
    consents = Number((await q.executeTakeFirst()).numDeletedRows);
    for (const id of found.grants) {
      await trx
        .deleteFrom("oauth_payloads")
        .where((eb) =>
          eb.or([eb("grant_id", "=", id), eb.and([eb("model", "=", "Grant"), eb("id", "=", id)])]),
        )
        .execute();
    }
    if (found.sessions.length > 0)
      await trx
        .deleteFrom("oauth_payloads")
        .where("model", "=", "Session")
        .where("id", "in", found.sessions)
        .execute();
    return found.grants.length + found.sessions.length + consents > 0;
  });
  return { grants: found.grants.length, consents };
}

/** A client's display name: a registered client's client_name or a machine client's name. */
async function clientNames(
  db: Kysely<OAuthDatabase>,
  keys: ArtefactKeys,
  clientIds: readonly string[],
): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const unique = [...new Set(clientIds)];
  if (unique.length === 0) return names;
  const machine = await db
    .selectFrom("oauth_machine_clients")
    .select(["client_id", "name"])
    .where("client_id", "in", unique)
    .execute();
  for (const m of machine) names.set(m.client_id, m.name);
  const byHash = new Map(unique.map((id) => [lookupHash(keys, id), id]));
  const rows = await db
    .selectFrom("oauth_payloads")
    .select(["id", "payload"])
    .where("model", "=", "Client")
    .where("id", "in", [...byHash.keys()])
    .execute();
  for (const row of rows) {
    const name = payloadOf(keys, "Client", row.id, row.payload)?.client_name;
    const clientId = byHash.get(row.id);
    if (typeof name === "string" && clientId !== undefined && !names.has(clientId)) names.set(clientId, name);
  }
  return names;
}

/** The account's remembered consents, newest first, each with the client's name. */
export async function accountConsents(
  store: Store,
  keys: ArtefactKeys,
  accountId: string,
): Promise<AccountConsent[]> {
  const db = oauthDatabase(store);
  const rows = await db
    .selectFrom("oauth_consents")
    .selectAll()
    .where("account_id", "=", accountId)
    .orderBy("updated_at", "desc")
    .execute();
  const names = await clientNames(
    db,
    keys,
    rows.map((r) => r.client_id),
  );
  return rows.map((r) => ({
    accountId: r.account_id,
    clientId: r.client_id,
    clientName: names.get(r.client_id) ?? null,
    updatedAt: new Date(Number(r.updated_at)),
  }));
}
