/**
 * AES-256-GCM sealing for values kept at rest (NIST SP 800-38D): a 96-bit random IV, and the
 * record's id as associated data so a sealed value cannot be moved to another row. Used for
 * the authorization server's signing keys and client secrets (../oauth/) and the audit
 * trail's checkpoint keys (../audit/checkpoints.ts), each under its own derived key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

/** `v1.<iv>.<tag>.<ciphertext>`, base64url parts. */
export function seal(key: Buffer, plaintext: string, associatedData: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(associatedData, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return ["v1", iv, cipher.getAuthTag(), body]
    .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
    .join(".");
}

/** Throws when the value was not sealed with this key for this associated data. */
export function unseal(key: Buffer, sealed: string, associatedData: string): string {
  const [version, iv, tag, body] = sealed.split(".");
  if (version !== "v1" || iv === undefined || tag === undefined || body === undefined) {
    throw new Error("sealed value has an unknown format");
  }
  const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  decipher.setAAD(Buffer.from(associatedData, "utf8"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
}
