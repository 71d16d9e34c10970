/**
 * Keys derived from the gateway's server secret with HKDF-SHA-256 (RFC 5869), and the one
 * MAC every signed value uses (HMAC-SHA-256, RFC 2104). Each part of the gateway derives its
 * own keys, one per purpose (`info` names it), so the secret itself never signs or encrypts
 * anything and a value made for one purpose never passes for another.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/** RFC 5869 §3.1: the input keying material should be at least as long as the hash. */
export const MIN_SECRET_BYTES = 32;

/**
 * A 32-byte key for one purpose. `salt` names the part of the gateway (its version too) and
 * `info` the purpose; both are part of what an existing deployment's stored data was sealed
 * or signed with, so neither may change for an existing purpose.
 */
export function deriveKey(secret: Buffer, salt: string, info: string): Buffer {
  if (secret.length < MIN_SECRET_BYTES)
    throw new Error(`the server secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return Buffer.from(hkdfSync("sha256", secret, Buffer.from(salt, "utf8"), info, 32));
}

/** HMAC-SHA-256 of `data`, base64url. */
export function mac(key: Buffer, data: string): string {
  return createHmac("sha256", key).update(data, "utf8").digest("base64url");
}

/** Constant-time comparison of two strings (a MAC, a token), false when their lengths differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Constant-time check of a presented MAC against the one `key` makes for `data`. */
export function macValid(key: Buffer, data: string, presented: string): boolean {
  return constantTimeEqual(mac(key, data), presented);
}
