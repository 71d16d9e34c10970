/**
 * How the authorization server keeps its artefacts at rest in `oauth_payloads`, so that a
 * copy of the store (a stolen SQLite file, a PostgreSQL dump, a backup) yields no bearer
 * value (RFC 6819 §4.5.3 "Obtaining Refresh Token from Authorization Server Database",
 * §5.1.4.1.3 "No Cleartext Storage of Credentials"; RFC 9700 §4.14):
 *
 * - every lookup value — the row id (for a refresh token, authorization code, registration
 *   access token, session, interaction or device code, the id *is* the bearer value), the
 *   grant id, the interaction/session uid and the user code — is stored as an HMAC-SHA-256
 *   under a key derived from the server secret, as API keys are (src/authn/keyring.ts). A
 *   lookup hashes the presented value and finds the row by index: one HMAC, no scan.
 * - every payload is sealed (AES-256-GCM, ./secrets.ts) with the model name and hashed id as
 *   associated data, so a payload cannot be moved to another row. This covers the secrets
 *   inside payloads that oidc-provider must read back in clear: a dynamically registered
 *   client's `client_secret` (oidc-provider compares it itself, in constant time, like the
 *   machine clients' secrets in ./machineClients.ts), the `jti` every token payload repeats,
 *   PKCE challenges, and the session's account and grants.
 *
 * Without the server secret, the store therefore holds neither a value that can be presented
 * nor one that can be read.
 */
import { mac } from "../core/keyDerivation.js";
import { deriveOAuthKey, seal, unseal } from "./secrets.js";

export interface ArtefactKeys {
  /** HMAC key for lookup values. */
  readonly lookup: Buffer;
  /** AES-256-GCM key for payloads. */
  readonly payload: Buffer;
}

export function artefactKeys(secret: Buffer): ArtefactKeys {
  return {
    lookup: deriveOAuthKey(secret, "artefact-lookup"),
    payload: deriveOAuthKey(secret, "artefact-encryption"),
  };
}

/** The stored form of a lookup value (base64url HMAC-SHA-256; the value itself is never stored). */
export function lookupHash(keys: ArtefactKeys, value: string): string {
  return mac(keys.lookup, value);
}

const associatedData = (model: string, storedId: string) => `oauth_payloads:${model}:${storedId}`;

export function sealPayload(keys: ArtefactKeys, model: string, storedId: string, json: string): string {
  return seal(keys.payload, json, associatedData(model, storedId));
}

/** Throws when the payload was not sealed with this key for this row. */
export function unsealPayload(keys: ArtefactKeys, model: string, storedId: string, sealed: string): string {
  return unseal(keys.payload, sealed, associatedData(model, storedId));
}

/** True for a payload written by this module (`v1.…`); legacy rows hold plain JSON (`{…}`). */
export function isSealedPayload(text: string): boolean {
  return text.startsWith("v1.");
}
