/**
 * Keys derived from the gateway's server secret with HKDF-SHA-256 (RFC 5869), one per
 * purpose (`info` names it), so the secret itself never encrypts or signs anything. Values
 * kept at rest are sealed with ../core/sealing.ts (AES-256-GCM, shared with the audit trail's
 * checkpoint keys).
 */
import { deriveKey } from "../core/keyDerivation.js";

export { seal, unseal } from "../core/sealing.js";

export type KeyPurpose =
  | "signing-key-encryption"
  | "cookie-signing"
  | "interaction-csrf"
  | "client-secret-encryption"
  | "artefact-lookup"
  | "artefact-encryption";

export function deriveOAuthKey(secret: Buffer, purpose: KeyPurpose): Buffer {
  return deriveKey(secret, "portcullis/oauth/v1", `portcullis oauth ${purpose}`);
}
