/**
 * Keys for runtime review, derived from the gateway's server secret with HKDF-SHA-256
 * (RFC 5869) as src/oauth/secrets.ts derives the authorization server's: one key per
 * purpose, so the secret itself never signs anything, and a requestState can never pass for
 * a signed link or the other way round.
 */
import { deriveKey } from "../core/keyDerivation.js";

export { mac, macValid } from "../core/keyDerivation.js";

export type ReviewKeyPurpose = "request-state" | "approval-link";

export function deriveReviewKey(secret: Buffer, purpose: ReviewKeyPurpose): Buffer {
  return deriveKey(secret, "portcullis/review/v1", `portcullis review ${purpose}`);
}
