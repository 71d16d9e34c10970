/**
 * Which checkpoint keys `portcullis audit verify` trusts. The public keys stored in
 * `audit_signing_keys` prove nothing to a verifier: whoever can rewrite the records can also
 * insert a key of their own and re-sign every checkpoint with it. A key is trusted only when
 * something outside the store vouches for it, in this order:
 *
 * 1. pinned by the operator: `--public-key <file>` (SPKI PEM, as `portcullis audit public-key`
 *    prints it at first start) or `--key-fingerprint <sha256 hex>` of a stored key;
 * 2. sealed under this gateway's server secret (the verifier runs with the gateway's config):
 *    a stored key whose private half unseals and matches its public half was made by a holder
 *    of the secret, which the intruder does not have;
 * 3. otherwise nothing is trusted beyond the store itself: the report says so and `verify`
 *    fails unless the operator accepts that explicitly (`--trust-store-keys`).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { AuditSigningKeyRecord } from "../store/types.js";
import { auditKeyFingerprint, auditKeyId, keySealedUnder } from "./checkpoints.js";

export type TrustSource = "pinned" | "server-secret" | "store";

export interface KeyTrust {
  source: TrustSource;
  /** Trusted keys by id. */
  keys: Map<string, KeyObject>;
  /** Stored keys that nothing vouches for (an intruder's, or a key the pin does not list). */
  untrusted: string[];
}

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

/** Every SPKI PEM public key in `text` (comments and other lines are ignored). */
export function parsePublicKeys(text: string, origin: string): KeyObject[] {
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`${origin}: no PEM public key (-----BEGIN PUBLIC KEY-----) found`);
  return blocks.map((pem) => {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`${origin}: not an Ed25519 public key`);
    return key;
  });
}

/** `sha256:<hex>`, `SHA256:<hex>`, bare hex, with or without colons between bytes. */
export function normaliseFingerprint(value: string): string {
  const hex = value
    .trim()
    .replace(/^sha256:/i, "")
    .replace(/:/g, "")
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new Error(`--key-fingerprint '${value}': expected the 64 hex digits of a SHA-256 fingerprint`);
  return hex;
}

function split(
  source: TrustSource,
  stored: readonly AuditSigningKeyRecord[],
  trusted: KeyObject[],
): KeyTrust {
  const keys = new Map(trusted.map((k) => [auditKeyId(k), k]));
  return { source, keys, untrusted: stored.map((r) => r.id).filter((id) => !keys.has(id)) };
}

export function pinnedTrust(
  stored: readonly AuditSigningKeyRecord[],
  pins: { publicKeys: KeyObject[]; fingerprints: string[] },
): KeyTrust {
  const fingerprints = new Set(pins.fingerprints);
  const byFingerprint = stored
    .map((r) => createPublicKey(r.publicKey))
    .filter((k) => fingerprints.has(auditKeyFingerprint(k)));
  return split("pinned", stored, [...pins.publicKeys, ...byFingerprint]);
}

export function serverSecretTrust(stored: readonly AuditSigningKeyRecord[], secret: Buffer): KeyTrust {
  return split(
    "server-secret",
    stored,
    stored.map((r) => keySealedUnder(r, secret)).filter((k): k is KeyObject => k !== null),
  );
}

/** Trusts whatever the store holds: integrity only, no protection against a re-signed store. */
export function storeTrust(stored: readonly AuditSigningKeyRecord[]): KeyTrust {
  return split(
    "store",
    stored,
    stored.map((r) => createPublicKey(r.publicKey)),
  );
}
