/**
 * Replay detection for JWT authorization grants (RFC 7523 §3 item 7; MCP "Enterprise-Managed
 * Authorization" §7.4.2: replay protection is REQUIRED for ID-JAGs, at least until `exp`,
 * scoped by issuer). Each redeemed assertion's (issuer, jti) is claimed with one atomic
 * INSERT … ON CONFLICT in `oauth_assertion_replay` (migration 012), so two replicas on one
 * PostgreSQL, or two requests racing in one process, can never both redeem it. A row that
 * outlived its assertion may be reclaimed by the same statement; the rest are purged by
 * {@link AssertionReplayStore.purgeExpired}, so the table never holds more than the
 * assertions of one maximum lifetime.
 */
import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import type { OAuthDatabase } from "./database.js";

/** The row key: fixed length whatever the issuer sends as `jti`. */
export function replayKey(issuer: string, jti: string): string {
  return createHash("sha256").update(`${issuer}\n${jti}`).digest("base64url");
}

export class AssertionReplayStore {
  constructor(
    private readonly db: Kysely<OAuthDatabase>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records the assertion as redeemed; false when it already was (and has not yet expired).
   * `expiresAt` is the assertion's `exp` in epoch ms.
   */
  async claim(issuer: string, jti: string, expiresAt: number): Promise<boolean> {
    const key = replayKey(issuer, jti);
    const now = this.now();
    const result = await this.db
      .insertInto("oauth_assertion_replay")
      .values({ key, expires_at: expiresAt })
      .onConflict((oc) =>
        oc
          .column("key")
          .doUpdateSet({ expires_at: expiresAt })
          .where("oauth_assertion_replay.expires_at", "<", now),
      )
      .executeTakeFirst();
    return BigInt(result.numInsertedOrUpdatedRows ?? 0n) > 0n;
  }

  /** Deletes the rows of assertions that expired; returns how many went. */
  async purgeExpired(): Promise<number> {
    const result = await this.db
      .deleteFrom("oauth_assertion_replay")
      .where("expires_at", "<", this.now())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
