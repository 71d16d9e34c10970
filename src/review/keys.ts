/**
 * Keys for runtime review, derived from the gateway's server secret with HKDF-SHA-256
 * (RFC 5869) as src/oauth/secrets.ts derives the authorization server's: one key per
 * purpose, so the secret itself never signs anything, and a requestState can never pass for
 * a signed link or the other way round.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

export type ReviewKeyPurpose = "request-state" | "approval-link";

const SALT = Buffer.from("portcullis/review/v1");

export function deriveReviewKey(secret: Buffer, purpose: ReviewKeyPurpose): Buffer {
  if (secret.length < 32) throw new Error("the server secret must be at least 32 bytes");
  return Buffer.from(hkdfSync("sha256", secret, SALT, `portcullis review ${purpose}`, 32));
}

/** HMAC-SHA-256, base64url. */
export function mac(key: Buffer, data: string): string {
  return createHmac("sha256", key).update(data, "utf8").digest("base64url");
}

/** Constant-time comparison of a presented MAC with the expected one. */
export function macValid(key: Buffer, data: string, presented: string): boolean {
  const expected = Buffer.from(mac(key, data));
  const actual = Buffer.from(presented);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
