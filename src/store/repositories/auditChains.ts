/**
 * The tamper-evident trail's bookkeeping (migrations 006, 008): the signed registry of
 * chains (`audit_chains`), signed checkpoints, the checkpoint signing keys, and retention,
 * which deletes a chain's oldest records and moves its signed anchor forward.
 */
import { registryTail } from "../auditRegistry.js";
import type {
  AuditAnchorProof,
  AuditChainInfo,
  AuditChainRepository,
  AuditCheckpoint,
  AuditSigningKeyRecord,
} from "../auditTypes.js";
import { rowToAuditChain, rowToAuditSigningKey, rowToCheckpoint } from "../rows.js";
import type { StoreContext } from "./context.js";

export class SqlAuditChainRepository implements AuditChainRepository {
  constructor(private readonly ctx: StoreContext) {}

  async listAuditChains(): Promise<AuditChainInfo[]> {
    const rows = await this.ctx.db
      .selectFrom("audit_chains")
      .selectAll()
      .orderBy("started_at")
      .orderBy("chain")
      .execute();
    return rows.map(rowToAuditChain);
  }

  auditRegistryTail(): Promise<{ seq: number; hash: string } | null> {
    return registryTail(this.ctx.db);
  }

  async listAuditCheckpoints(chain?: string): Promise<AuditCheckpoint[]> {
    let q = this.ctx.db.selectFrom("audit_checkpoints").selectAll().orderBy("chain").orderBy("chain_seq");
    if (chain !== undefined) q = q.where("chain", "=", chain);
    return (await q.execute()).map(rowToCheckpoint);
  }

  async insertAuditSigningKey(key: AuditSigningKeyRecord): Promise<void> {
    await this.ctx.db
      .insertInto("audit_signing_keys")
      .values({
        id: key.id,
        public_key: key.publicKey,
        private_key_sealed: key.privateKeySealed,
        created_at: key.createdAt.getTime(),
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .execute();
  }

  async listAuditSigningKeys(): Promise<AuditSigningKeyRecord[]> {
    const rows = await this.ctx.db
      .selectFrom("audit_signing_keys")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id")
      .execute();
    return rows.map(rowToAuditSigningKey);
  }

  async purgeAuditChain(
    chain: string,
    anchor: { chainSeq: number; hash: string; proof: AuditAnchorProof },
  ): Promise<number> {
    return this.ctx.db.transaction().execute(async (trx) => {
      const moved = await trx
        .updateTable("audit_chains")
        .set({
          anchor_seq: anchor.chainSeq,
          anchor_hash: anchor.hash,
          anchor_at: anchor.proof.at.getTime(),
          anchor_key_id: anchor.proof.keyId,
          anchor_signature: anchor.proof.signature,
        })
        .where("chain", "=", chain)
        .where("anchor_seq", "<", anchor.chainSeq)
        .executeTakeFirst();
      if (moved.numUpdatedRows === 0n) return 0;
      const res = await trx
        .deleteFrom("audit_log")
        .where("chain", "=", chain)
        .where("chain_seq", "<=", anchor.chainSeq)
        .executeTakeFirst();
      await trx
        .deleteFrom("audit_checkpoints")
        .where("chain", "=", chain)
        .where("chain_seq", "<", anchor.chainSeq)
        .execute();
      return Number(res.numDeletedRows);
    });
  }
}
