/**
 * What an intruder with write access to the database, and without the server secret, can do
 * to the audit trail: plain SQL on the tables, plus the public formats of docs/audit.md to
 * recompute hashes and sign with a key of their own. Shared by the store-level and the CLI
 * tests of `audit verify` (test/audit/verify.test.ts, test/e2e/audit-store-rewrites.test.ts).
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { auditRecordHash } from "../../src/audit/chain.js";
import { auditKeyId, checkpointPayload } from "../../src/audit/checkpoints.js";
import { registrationPayload } from "../../src/audit/registry.js";
import type { Store } from "../../src/store/types.js";

/** Runs one SQL statement directly on the database, bypassing the store. */
export type Sql = (statement: string) => Promise<void>;

const quote = (v: string) => `'${v.replace(/'/g, "''")}'`;

/** (a) Deletes a whole chain: its records, its checkpoints and its `audit_chains` row. */
export async function deleteWholeChain(sql: Sql, chain: string): Promise<void> {
  for (const table of ["audit_log", "audit_checkpoints", "audit_chains"])
    await sql(`DELETE FROM ${table} WHERE chain = ${quote(chain)}`);
}

/**
 * (b) Deletes the head of a chain up to its first checkpoint and moves the anchor there, as
 * retention would have. Returns the new anchor's sequence number.
 */
export async function deleteHeadAndMoveAnchor(sql: Sql, store: Store, chain: string): Promise<number> {
  const first = (await store.listAuditCheckpoints(chain))[0];
  if (first === undefined) throw new Error(`chain ${chain} has no checkpoint to anchor on`);
  await sql(`DELETE FROM audit_log WHERE chain = ${quote(chain)} AND chain_seq <= ${first.chainSeq}`);
  await sql(`DELETE FROM audit_checkpoints WHERE chain = ${quote(chain)} AND chain_seq < ${first.chainSeq}`);
  await sql(
    `UPDATE audit_chains SET anchor_seq = ${first.chainSeq}, anchor_hash = ${quote(first.hash)} WHERE chain = ${quote(chain)}`,
  );
  return first.chainSeq;
}

/**
 * (c) Inserts a key of the intruder's own into `audit_signing_keys` (and drops the genuine
 * ones), rewrites `reason` of record `seq` of `chain`, recomputes that chain's hashes, and
 * re-signs every checkpoint and registry entry of the store with the new key.
 */
export async function rewriteAndResign(
  sql: Sql,
  store: Store,
  target: { chain: string; seq: number; reason: string },
): Promise<void> {
  const pair = generateKeyPairSync("ed25519");
  const keyId = auditKeyId(pair.publicKey);
  const pem = pair.publicKey.export({ format: "pem", type: "spki" }).toString();
  await sql(`DELETE FROM audit_signing_keys`);
  await sql(
    `INSERT INTO audit_signing_keys (id, public_key, private_key_sealed, created_at) VALUES (${quote(keyId)}, ${quote(pem)}, 'v1.AAAA.AAAA.AAAA', ${Date.now()})`,
  );
  const signed = (payload: Buffer) => sign(null, payload, pair.privateKey).toString("base64url");

  const hashes = new Map<number, string>();
  let prev: string | null = null;
  for (const row of await store.readAuditChain(target.chain, 0, 100_000)) {
    const edited = row.chain_seq === target.seq ? { ...row, reason: target.reason } : row;
    const prevHash = prev ?? row.prev_hash;
    const hash = auditRecordHash(prevHash, edited);
    await sql(
      `UPDATE audit_log SET reason = ${quote(edited.reason)}, prev_hash = ${quote(prevHash)}, hash = ${quote(hash)} WHERE chain = ${quote(target.chain)} AND chain_seq = ${row.chain_seq}`,
    );
    hashes.set(row.chain_seq, hash);
    prev = hash;
  }
  for (const c of await store.listAuditCheckpoints()) {
    const hash = c.chain === target.chain ? (hashes.get(c.chainSeq) ?? c.hash) : c.hash;
    const signature = signed(checkpointPayload({ ...c, hash }));
    await sql(
      `UPDATE audit_checkpoints SET hash = ${quote(hash)}, key_id = ${quote(keyId)}, signature = ${quote(signature)} WHERE chain = ${quote(c.chain)} AND chain_seq = ${c.chainSeq}`,
    );
  }
  for (const info of await store.listAuditChains()) {
    const reg = info.registration;
    if (reg === null) continue;
    const signature = signed(registrationPayload({ ...info, ...reg }));
    await sql(
      `UPDATE audit_chains SET reg_key_id = ${quote(keyId)}, reg_signature = ${quote(signature)} WHERE chain = ${quote(info.chain)}`,
    );
  }
}

/** (d) Inserts a record outside any chain (chain columns null), dated `at`. */
export async function insertUnchainedRecord(sql: Sql, at: Date, reason = "forged, unchained"): Promise<void> {
  await sql(
    `INSERT INTO audit_log (at, environment, principal, method, decision, reason, latency_us) VALUES (${at.getTime()}, 'prod', 'user:mallory', 'api_key', 'allow', ${quote(reason)}, 1)`,
  );
}
