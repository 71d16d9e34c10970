/**
 * The authorization server's signing keys (RFC 7517 JWK; RFC 9068 §2.1 access tokens are
 * signed, ES256 by default, RS256 for clients that need it). Generated on first start,
 * stored in `oauth_signing_keys` sealed with AES-256-GCM under a key derived from the server
 * secret, and rotated by {@link rotateSigningKeys}: the new pair signs at once, the retired
 * pair stays published in the JWKS (verification only) until the overlap ends, so tokens
 * signed just before the rotation keep verifying.
 */
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import type { Kysely } from "kysely";
import type { OAuthDatabase } from "./database.js";
import { deriveOAuthKey, seal, unseal } from "./secrets.js";

export const SIGNING_ALGORITHMS = ["ES256", "RS256"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** How long a retired key stays published by default: well past any access token's life. */
export const DEFAULT_KEY_OVERLAP_SECONDS = 24 * 3600;

/** How often a running authorization server looks for rotated keys in the store. */
export const SIGNING_KEY_RELOAD_SECONDS = 30;

export interface SigningKey {
  kid: string;
  /** Private JWK with `kid`, `alg`, `use: "sig"`. */
  jwk: JWK;
  createdAt: Date;
  retiredAt: Date | null;
}

async function newKey(alg: SigningAlgorithm): Promise<JWK> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomBytes(9).toString("base64url")}`;
  return { ...(await exportJWK(pair.privateKey)), kid, alg, use: "sig" };
}

async function insertNewPair(db: Kysely<OAuthDatabase>, key: Buffer, at: number): Promise<void> {
  for (const alg of SIGNING_ALGORITHMS) {
    const jwk = await newKey(alg);
    const kid = jwk.kid as string;
    await db
      .insertInto("oauth_signing_keys")
      .values({ kid, jwk_encrypted: seal(key, JSON.stringify(jwk), kid), created_at: at, retired_at: null })
      .execute();
  }
}

/**
 * Keys to publish, signing keys first (newest active per algorithm), then retired keys still
 * inside their overlap. Generates the first pair when there is none.
 */
export async function loadSigningKeys(
  db: Kysely<OAuthDatabase>,
  secret: Buffer,
  opts: { overlapSeconds?: number; now?: number } = {},
): Promise<SigningKey[]> {
  const key = deriveOAuthKey(secret, "signing-key-encryption");
  const now = opts.now ?? Date.now();
  const overlapMs = (opts.overlapSeconds ?? DEFAULT_KEY_OVERLAP_SECONDS) * 1000;
  const read = () =>
    db
      .selectFrom("oauth_signing_keys")
      .selectAll()
      .where((eb) => eb.or([eb("retired_at", "is", null), eb("retired_at", ">", now - overlapMs)]))
      .orderBy("created_at", "desc")
      .orderBy("kid")
      .execute();
  let rows = await read();
  if (!rows.some((r) => r.retired_at === null)) {
    await insertNewPair(db, key, now);
    rows = await read();
  }
  const keys = rows.map((r): SigningKey => {
    let jwk: JWK;
    try {
      jwk = JSON.parse(unseal(key, r.jwk_encrypted, r.kid)) as JWK;
    } catch {
      throw new Error(
        `signing key ${r.kid} cannot be decrypted: the server secret differs from the one that sealed it`,
      );
    }
    return {
      kid: r.kid,
      jwk,
      createdAt: new Date(Number(r.created_at)),
      retiredAt: r.retired_at === null ? null : new Date(Number(r.retired_at)),
    };
  });
  return [...keys.filter((k) => k.retiredAt === null), ...keys.filter((k) => k.retiredAt !== null)];
}

/**
 * Retires the active keys and generates a new ES256 + RS256 pair in one transaction; keys
 * retired longer than the overlap ago are deleted. Running servers sign with the new pair
 * after they reload their keys (restart); verifiers find the new `kid` in the store.
 */
export async function rotateSigningKeys(
  db: Kysely<OAuthDatabase>,
  secret: Buffer,
  opts: { overlapSeconds?: number; now?: number } = {},
): Promise<{ retired: string[]; created: string[] }> {
  const key = deriveOAuthKey(secret, "signing-key-encryption");
  const now = opts.now ?? Date.now();
  const overlapMs = (opts.overlapSeconds ?? DEFAULT_KEY_OVERLAP_SECONDS) * 1000;
  return db.transaction().execute(async (trx) => {
    const active = await trx
      .selectFrom("oauth_signing_keys")
      .select("kid")
      .where("retired_at", "is", null)
      .execute();
    await trx
      .updateTable("oauth_signing_keys")
      .set({ retired_at: now })
      .where("retired_at", "is", null)
      .execute();
    await trx
      .deleteFrom("oauth_signing_keys")
      .where("retired_at", "<=", now - overlapMs)
      .execute();
    await insertNewPair(trx, key, now);
    const created = await trx
      .selectFrom("oauth_signing_keys")
      .select("kid")
      .where("retired_at", "is", null)
      .execute();
    return { retired: active.map((r) => r.kid), created: created.map((r) => r.kid) };
  });
}

/** What `signing-keys list` shows: no key material, so no secret is needed to list. */
export interface SigningKeyFacts {
  kid: string;
  alg: string;
  createdAt: Date;
  retiredAt: Date | null;
  /** When a retired key leaves the JWKS (null while it signs). */
  publishedUntil: Date | null;
}

export async function listSigningKeys(
  db: Kysely<OAuthDatabase>,
  opts: { overlapSeconds?: number } = {},
): Promise<SigningKeyFacts[]> {
  const overlapMs = (opts.overlapSeconds ?? DEFAULT_KEY_OVERLAP_SECONDS) * 1000;
  const rows = await db
    .selectFrom("oauth_signing_keys")
    .select(["kid", "created_at", "retired_at"])
    .orderBy("created_at", "desc")
    .orderBy("kid")
    .execute();
  return rows.map((r) => ({
    kid: r.kid,
    // Our kids are `<alg>-<random>` (see newKey).
    alg: (r.kid.split("-")[0] ?? "").toUpperCase(),
    createdAt: new Date(Number(r.created_at)),
    retiredAt: r.retired_at === null ? null : new Date(Number(r.retired_at)),
    publishedUntil: r.retired_at === null ? null : new Date(Number(r.retired_at) + overlapMs),
  }));
}

/** A cheap fingerprint of the published key set, to notice a rotation made by another process. */
export async function signingKeySetVersion(db: Kysely<OAuthDatabase>): Promise<string> {
  const rows = await db
    .selectFrom("oauth_signing_keys")
    .select(["kid", "retired_at"])
    .orderBy("kid")
    .execute();
  return rows.map((r) => `${r.kid}:${r.retired_at ?? ""}`).join(",");
}

/** The public half of a private JWK, as published at the JWKS endpoint. */
export function publicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}
