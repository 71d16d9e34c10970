/**
 * Brings rows written before artefacts were protected at rest (./storedArtefacts.ts) to the
 * protected form, once, when the authorization server starts: clear ids, grant ids, uids and
 * user codes become keyed hashes, JSON payloads are sealed, and registrations that never
 * expired get the unused-client expiry. A SQL migration cannot do it: the keys derive from
 * the server secret, which the store does not hold.
 *
 * Each row is moved in its own transaction (delete the clear row, insert the protected one),
 * so replicas starting together over one PostgreSQL convert each row once, and a crash
 * leaves every row either clear (converted at the next start) or protected, never both.
 * Rows of model `UpstreamLogin` are written by ./federatedSignIn.ts under its own key scheme
 * and are short-lived; clear ones are left to expire.
 */
import type { Kysely } from "kysely";
import { DEFAULT_UNUSED_CLIENT_TTL_SECONDS, REGISTRATION_MODELS } from "./adapter.js";
import type { OAuthDatabase } from "./database.js";
import { type ArtefactKeys, isSealedPayload, lookupHash, sealPayload } from "./storedArtefacts.js";

const OWN_SCHEME_MODELS = ["UpstreamLogin"];

/** Returns how many rows were converted. */
export async function protectLegacyArtefacts(
  db: Kysely<OAuthDatabase>,
  keys: ArtefactKeys,
  opts: { now?: number; unusedClientTtlSeconds?: number } = {},
): Promise<number> {
  const now = opts.now ?? Date.now();
  const clientTtlMs = (opts.unusedClientTtlSeconds ?? DEFAULT_UNUSED_CLIENT_TTL_SECONDS) * 1000;
  const hashed = (value: string | null) => (value === null ? null : lookupHash(keys, value));
  const rows = await db
    .selectFrom("oauth_payloads")
    .selectAll()
    .where("model", "not in", OWN_SCHEME_MODELS)
    .where("payload", "like", "{%")
    .execute();
  let converted = 0;
  for (const row of rows) {
    if (isSealedPayload(row.payload)) continue;
    const storedId = lookupHash(keys, row.id);
    const expiresAt = row.expires_at ?? (REGISTRATION_MODELS.has(row.model) ? now + clientTtlMs : null);
    const moved = await db.transaction().execute(async (trx) => {
      const gone = await trx
        .deleteFrom("oauth_payloads")
        .where("model", "=", row.model)
        .where("id", "=", row.id)
        .where("payload", "=", row.payload)
        .executeTakeFirst();
      if (BigInt(gone.numDeletedRows) !== 1n) return false; // another replica moved it
      await trx
        .insertInto("oauth_payloads")
        .values({
          model: row.model,
          id: storedId,
          payload: sealPayload(keys, row.model, storedId, row.payload),
          grant_id: hashed(row.grant_id),
          uid: hashed(row.uid),
          user_code: hashed(row.user_code),
          expires_at: expiresAt === null ? null : Number(expiresAt),
          consumed_at: row.consumed_at === null ? null : Number(row.consumed_at),
        })
        .onConflict((oc) => oc.columns(["model", "id"]).doNothing())
        .execute();
      return true;
    });
    if (moved) converted++;
  }
  return converted;
}
