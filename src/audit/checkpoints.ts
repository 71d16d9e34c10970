/**
 * Signed checkpoints (RFC 8032 Ed25519): every N records or T seconds the writer signs
 * "chain C had `count` records, the last one (seq S) hashing to H, at time T". The same key
 * signs registry entries (src/audit/registry.ts) and retention's anchors. A verifier needs
 * only the public key, pinned outside the store (`portcullis audit public-key`, printed at
 * first start; src/audit/trust.ts), so the check can run outside the gateway. The private key is generated on first start and stored in
 * `audit_signing_keys` sealed with AES-256-GCM under a key derived from the server secret
 * (HKDF-SHA-256, its own purpose), like the OAuth signing keys.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { deriveKey } from "../core/keyDerivation.js";
import { seal, unseal } from "../core/sealing.js";
import type { AuditCheckpoint, AuditSigningKeyRecord, Store } from "../store/types.js";

/**
 * The bytes an Ed25519 checkpoint signature covers: v2 also names the registry entry the
 * writer saw (src/audit/registry.ts), v1 (before migration 008) does not.
 */
export function checkpointPayload(c: Omit<AuditCheckpoint, "keyId" | "signature">): Buffer {
  const fields = [c.chain, c.chainSeq, c.hash, c.count, c.at.getTime()];
  return c.registry == null
    ? Buffer.from(`portcullis-audit-checkpoint/v1\n${JSON.stringify(fields)}`, "utf8")
    : Buffer.from(
        `portcullis-audit-checkpoint/v2\n${JSON.stringify([...fields, c.registry.seq, c.registry.hash])}`,
        "utf8",
      );
}

/** The bytes retention signs when it moves a chain's anchor (src/audit/retention.ts). */
export function anchorPayload(a: { chain: string; chainSeq: number; hash: string; at: Date }): Buffer {
  return Buffer.from(
    `portcullis-audit-anchor/v1\n${JSON.stringify([a.chain, a.chainSeq, a.hash, a.at.getTime()])}`,
    "utf8",
  );
}

function sealingKey(secret: Buffer): Buffer {
  return deriveKey(secret, "portcullis/audit/v1", "portcullis audit checkpoint-key-encryption");
}

/** Full SHA-256 (hex) over the raw 32-byte public key: what an operator pins. */
export function auditKeyFingerprint(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return createHash("sha256").update(raw).digest("hex");
}

/** First 16 hex characters of the fingerprint. */
export function auditKeyId(publicKey: KeyObject): string {
  return auditKeyFingerprint(publicKey).slice(0, 16);
}

export interface CheckpointSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  /** True when this call generated the key (first start): the operator must keep its public half. */
  readonly created: boolean;
  sign(c: Omit<AuditCheckpoint, "keyId" | "signature">): AuditCheckpoint;
  /** Ed25519 over any of this module's payloads, base64url. */
  signBytes(payload: Buffer): string;
}

/** The private key of a stored record, when it unseals under `secret` and matches its public half. */
function unsealedPrivateKey(record: AuditSigningKeyRecord, secret: Buffer): KeyObject | null {
  try {
    const privateKey = createPrivateKey(unseal(sealingKey(secret), record.privateKeySealed, record.id));
    const publicKey = createPublicKey(privateKey);
    return publicKey.equals(createPublicKey(record.publicKey)) && auditKeyId(publicKey) === record.id
      ? privateKey
      : null;
  } catch {
    return null;
  }
}

/**
 * The public key of a stored key record, derived from its private half unsealed under the
 * server secret, or null when it does not unseal or does not match the stored public key: a
 * key an intruder inserted without the secret.
 */
export function keySealedUnder(record: AuditSigningKeyRecord, secret: Buffer): KeyObject | null {
  const privateKey = unsealedPrivateKey(record, secret);
  return privateKey === null ? null : createPublicKey(privateKey);
}

/**
 * The newest checkpoint key sealed under `secret`, generated (and stored sealed) when the store
 * has none. Keys that do not unseal are skipped: a row inserted without the secret neither
 * signs nor stops the gateway. Throws when no key unseals: the server secret differs from the
 * one that sealed them.
 */
export async function loadCheckpointSigner(
  store: Store,
  secret: Buffer,
  now = new Date(),
): Promise<CheckpointSigner> {
  let records = await store.listAuditSigningKeys();
  let generated: string | null = null;
  if (records.length === 0) {
    const pair = generateKeyPairSync("ed25519");
    generated = auditKeyId(pair.publicKey);
    await store.insertAuditSigningKey({
      id: generated,
      publicKey: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
      privateKeySealed: seal(
        sealingKey(secret),
        pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
        generated,
      ),
      createdAt: now,
    });
    // Another replica may have stored its key at the same moment: all sign with the newest.
    records = await store.listAuditSigningKeys();
  }
  let record: AuditSigningKeyRecord | undefined;
  let privateKey: KeyObject | null = null;
  for (record of records) {
    privateKey = unsealedPrivateKey(record, secret);
    if (privateKey !== null) break;
  }
  if (record === undefined || privateKey === null) {
    throw new Error(
      `audit checkpoint key ${records[0]?.id} cannot be decrypted: the server secret differs from the one that sealed it`,
    );
  }
  const keyId = record.id;
  const signing = privateKey;
  const signBytes = (payload: Buffer) => sign(null, payload, signing).toString("base64url");
  return {
    keyId,
    // Derived from the private key, not read from the store's public column.
    publicKey: createPublicKey(privateKey),
    created: keyId === generated,
    signBytes,
    sign(c) {
      return { ...c, keyId, signature: signBytes(checkpointPayload(c)) };
    },
  };
}

/** Whether `signature` (base64url) over `payload` verifies under the trusted key `keyId`. */
export function signatureValid(
  payload: Buffer,
  keyId: string,
  signature: string,
  keys: ReadonlyMap<string, KeyObject>,
): boolean {
  const key = keys.get(keyId);
  if (key === undefined) return false;
  try {
    return verify(null, payload, key, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

export function checkpointSignatureValid(c: AuditCheckpoint, keys: ReadonlyMap<string, KeyObject>): boolean {
  return signatureValid(checkpointPayload(c), c.keyId, c.signature, keys);
}
