/**
 * Signed checkpoints (RFC 8032 Ed25519): every N records or T seconds the writer signs
 * "chain C had `count` records, the last one (seq S) hashing to H, at time T". A verifier
 * needs only the public key (`portcullis audit public-key`), so the check can run outside
 * the gateway. The private key is generated on first start and stored in
 * `audit_signing_keys` sealed with AES-256-GCM under a key derived from the server secret
 * (HKDF-SHA-256, its own purpose), like the OAuth signing keys.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { seal, unseal } from "../oauth/secrets.js";
import type { AuditCheckpoint, AuditSigningKeyRecord, Store } from "../store/types.js";

/** The bytes an Ed25519 checkpoint signature covers. */
export function checkpointPayload(c: Omit<AuditCheckpoint, "keyId" | "signature">): Buffer {
  return Buffer.from(
    `portcullis-audit-checkpoint/v1\n${JSON.stringify([c.chain, c.chainSeq, c.hash, c.count, c.at.getTime()])}`,
    "utf8",
  );
}

function sealingKey(secret: Buffer): Buffer {
  if (secret.length < 32) throw new Error("the server secret must be at least 32 bytes");
  return Buffer.from(
    hkdfSync(
      "sha256",
      secret,
      Buffer.from("portcullis/audit/v1"),
      "portcullis audit checkpoint-key-encryption",
      32,
    ),
  );
}

/** First 16 hex characters of SHA-256 over the raw 32-byte public key. */
export function auditKeyId(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

export interface CheckpointSigner {
  readonly keyId: string;
  sign(c: Omit<AuditCheckpoint, "keyId" | "signature">): AuditCheckpoint;
}

/**
 * The newest checkpoint key, generated (and stored sealed) when the store has none. Throws
 * when the key cannot be unsealed: the server secret differs from the one that sealed it.
 */
export async function loadCheckpointSigner(
  store: Store,
  secret: Buffer,
  now = new Date(),
): Promise<CheckpointSigner> {
  const key = sealingKey(secret);
  let record = (await store.listAuditSigningKeys())[0];
  if (record === undefined) {
    const pair = generateKeyPairSync("ed25519");
    const id = auditKeyId(pair.publicKey);
    await store.insertAuditSigningKey({
      id,
      publicKey: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
      privateKeySealed: seal(key, pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), id),
      createdAt: now,
    });
    // Another replica may have stored its key at the same moment: all sign with the newest.
    record = (await store.listAuditSigningKeys())[0] as AuditSigningKeyRecord;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(unseal(key, record.privateKeySealed, record.id));
  } catch {
    throw new Error(
      `audit checkpoint key ${record.id} cannot be decrypted: the server secret differs from the one that sealed it`,
    );
  }
  const keyId = record.id;
  return {
    keyId,
    sign(c) {
      return { ...c, keyId, signature: sign(null, checkpointPayload(c), privateKey).toString("base64url") };
    },
  };
}

/** Public keys by id, for verification. */
export function publicKeys(records: readonly AuditSigningKeyRecord[]): Map<string, KeyObject> {
  return new Map(records.map((r) => [r.id, createPublicKey(r.publicKey)]));
}

export function checkpointSignatureValid(c: AuditCheckpoint, keys: ReadonlyMap<string, KeyObject>): boolean {
  const key = keys.get(c.keyId);
  if (key === undefined) return false;
  try {
    return verify(null, checkpointPayload(c), key, Buffer.from(c.signature, "base64url"));
  } catch {
    return false;
  }
}
