/**
 * oidc-provider's storage adapter (its `adapter` option, interface documented in
 * node_modules/oidc-provider/lib/adapters/memory_adapter.js) on the gateway's SQL store:
 * table `oauth_payloads`, one row per artefact, keyed by (model, id), with the grant id,
 * interaction uid and user code as indexed columns so that grant-wide revocation
 * (RFC 7009 §2.1, refresh-token and code reuse) is one DELETE.
 * Expired rows are invisible to find() and removed by {@link purgeExpired}.
 *
 * Ids, grant ids, uids and user codes are stored as keyed hashes and payloads sealed
 * (./storedArtefacts.ts): oidc-provider passes and receives the clear values, the store never
 * holds them. A dynamically registered client (model `Client`) and its registration access
 * token expire after `unusedClientTtlSeconds` without use (RFC 7591 §5: registrations must
 * not accumulate forever); each use of the client pushes its expiry back.
 *
 * Model `ReplayDetection` (the jti of every client assertion and DPoP proof, RFC 7523 §3
 * item 7) is written insert-if-absent: oidc-provider's replay check
 * (`ReplayDetection.unique`, lib/models/replay_detection.js) looks the jti up and then saves
 * it, two steps that concurrent requests carrying the same assertion can both pass (and do,
 * over PostgreSQL). The save is the atomic step here: only the first writer of a live row
 * succeeds, the others get {@link ReplayDetected}, which oidc-provider answers as it answers
 * a sequential replay, `invalid_client` (401).
 */
import type { Kysely } from "kysely";
import type { OAuthDatabase } from "./database.js";
import { type ArtefactKeys, lookupHash, sealPayload, unsealPayload } from "./storedArtefacts.js";

/** What oidc-provider stores: a JSON object with a few well-known fields. */
export interface AdapterPayload {
  grantId?: string;
  uid?: string;
  userCode?: string;
  /** Epoch seconds, set by consume(). */
  consumed?: number;
  [key: string]: unknown;
}

export interface OidcAdapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

export type OidcAdapterClass = new (model: string) => OidcAdapter;

/** oidc-provider's model for seen jti values (client assertions, DPoP proofs). */
export const REPLAY_DETECTION_MODEL = "ReplayDetection";

/**
 * A jti that is already recorded: the request lost a race against another one with the same
 * assertion. Shaped like oidc-provider's `InvalidClientAuth` (its error handler reads
 * `statusCode`, `expose`, `message`, `error_description`; the token endpoint audit reads
 * `error_detail`), so the answer is the RFC 6749 §5.2 `invalid_client` with status 401.
 * (A raced DPoP proof, rarer, is refused with the same answer rather than `invalid_dpop_proof`.)
 */
export class ReplayDetected extends Error {
  override name = "ReplayDetected";
  readonly status = 401;
  readonly statusCode = 401;
  readonly expose = true;
  readonly error = "invalid_client";
  readonly error_description = "client authentication failed";
  readonly error_detail = "client assertion tokens must only be used once (replayed concurrently)";
  constructor() {
    super("invalid_client");
  }
}

/** Default life of a dynamically registered client that is never used. */
export const DEFAULT_UNUSED_CLIENT_TTL_SECONDS = 90 * 86_400;
/** Models that oidc-provider stores without an expiry and that live as long as a registration. */
export const REGISTRATION_MODELS = new Set(["Client", "RegistrationAccessToken"]);

export interface SqlAdapterOptions {
  now?: () => number;
  /**
   * Runs (and is awaited) when a grant's record is destroyed (revoked), before oidc-provider
   * answers: the revocation is announced to other replicas before the client hears it succeeded.
   */
  onGrantRevoked?: (grantId: string) => Promise<void>;
  /** A registered client unused for this long is deleted. Default {@link DEFAULT_UNUSED_CLIENT_TTL_SECONDS}. */
  unusedClientTtlSeconds?: number;
}

/** Returns the adapter constructor oidc-provider instantiates once per model name. */
export function sqlAdapter(
  db: Kysely<OAuthDatabase>,
  keys: ArtefactKeys,
  options: SqlAdapterOptions = {},
): OidcAdapterClass {
  const now = options.now ?? Date.now;
  const onGrantRevoked = options.onGrantRevoked ?? (async () => {});
  const clientTtlMs = (options.unusedClientTtlSeconds ?? DEFAULT_UNUSED_CLIENT_TTL_SECONDS) * 1000;
  // A client's expiry is pushed back at most once per this interval (not a write per request).
  const slideMs = Math.min(86_400_000, clientTtlMs / 10);
  const hashed = (value: unknown) => (typeof value === "string" ? lookupHash(keys, value) : null);

  return class SqlAdapter implements OidcAdapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      const storedId = lookupHash(keys, id);
      const expiresAt =
        typeof expiresIn === "number"
          ? now() + expiresIn * 1000
          : REGISTRATION_MODELS.has(this.model)
            ? now() + clientTtlMs
            : null;
      const row = {
        model: this.model,
        id: storedId,
        payload: sealPayload(keys, this.model, storedId, JSON.stringify(payload)),
        grant_id: hashed(payload.grantId),
        uid: hashed(payload.uid),
        user_code: hashed(payload.userCode),
        expires_at: expiresAt,
        consumed_at: typeof payload.consumed === "number" ? payload.consumed * 1000 : null,
      };
      if (this.model === REPLAY_DETECTION_MODEL) {
        // Insert-if-absent: a live row with this id means another request recorded the jti
        // first. An expired row (not yet purged) may be taken over.
        const res = await db
          .insertInto("oauth_payloads")
          .values(row)
          .onConflict((oc) =>
            oc
              .columns(["model", "id"])
              .doUpdateSet({ payload: row.payload, expires_at: row.expires_at, consumed_at: null })
              .where("oauth_payloads.expires_at", "<=", now()),
          )
          .executeTakeFirst();
        if (BigInt(res.numInsertedOrUpdatedRows ?? 0n) === 0n) throw new ReplayDetected();
        return;
      }
      await db
        .insertInto("oauth_payloads")
        .values(row)
        .onConflict((oc) =>
          oc.columns(["model", "id"]).doUpdateSet({
            payload: row.payload,
            grant_id: row.grant_id,
            uid: row.uid,
            user_code: row.user_code,
            expires_at: row.expires_at,
            consumed_at: row.consumed_at,
          }),
        )
        .execute();
    }

    find(id: string): Promise<AdapterPayload | undefined> {
      return this.findWhere("id", id);
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findWhere("uid", uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findWhere("user_code", userCode);
    }

    private async findWhere(
      column: "id" | "uid" | "user_code",
      value: string,
    ): Promise<AdapterPayload | undefined> {
      const row = await db
        .selectFrom("oauth_payloads")
        .select(["id", "payload", "expires_at", "consumed_at"])
        .where("model", "=", this.model)
        .where(column, "=", lookupHash(keys, value))
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const at = now();
      if (row.expires_at !== null && Number(row.expires_at) <= at) return undefined;
      let payload: AdapterPayload;
      try {
        payload = JSON.parse(unsealPayload(keys, this.model, row.id, row.payload)) as AdapterPayload;
      } catch {
        // Sealed under another server secret, moved from another row, or not sealed at all:
        // an artefact that cannot be authenticated does not exist.
        return undefined;
      }
      if (row.consumed_at !== null) payload.consumed = Math.floor(Number(row.consumed_at) / 1000);
      if (
        this.model === "Client" &&
        row.expires_at !== null &&
        Number(row.expires_at) - at < clientTtlMs - slideMs
      ) {
        await db
          .updateTable("oauth_payloads")
          .set({ expires_at: at + clientTtlMs })
          .where("model", "=", this.model)
          .where("id", "=", row.id)
          .execute();
      }
      return payload;
    }

    async consume(id: string): Promise<void> {
      await db
        .updateTable("oauth_payloads")
        .set({ consumed_at: now() })
        .where("model", "=", this.model)
        .where("id", "=", lookupHash(keys, id))
        .execute();
    }

    async destroy(id: string): Promise<void> {
      await db
        .deleteFrom("oauth_payloads")
        .where("model", "=", this.model)
        .where("id", "=", lookupHash(keys, id))
        .execute();
      // oidc-provider revokes a grant by destroying its record (helpers/revoke.js).
      if (this.model === "Grant") await onGrantRevoked(id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db
        .deleteFrom("oauth_payloads")
        .where("model", "=", this.model)
        .where("grant_id", "=", lookupHash(keys, grantId))
        .execute();
    }
  };
}

/** Deletes expired artefacts; returns how many rows went. */
export async function purgeExpired(db: Kysely<OAuthDatabase>, at: number = Date.now()): Promise<number> {
  const res = await db.deleteFrom("oauth_payloads").where("expires_at", "<=", at).executeTakeFirst();
  return Number(res.numDeletedRows);
}

/** True while the grant exists and has not expired (a revoked grant is deleted). */
export async function grantIsLive(
  db: Kysely<OAuthDatabase>,
  keys: ArtefactKeys,
  grantId: string,
  at: number = Date.now(),
): Promise<boolean> {
  const row = await db
    .selectFrom("oauth_payloads")
    .select("expires_at")
    .where("model", "=", "Grant")
    .where("id", "=", lookupHash(keys, grantId))
    .executeTakeFirst();
  return row !== undefined && (row.expires_at === null || Number(row.expires_at) > at);
}
