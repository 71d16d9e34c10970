/** API keys (table `api_keys`, docs/storage-schema.md): every mutation goes out on the change feed. */
import { keyToRow, rowToKey } from "../rows.js";
import type { ApiKeyRecord, KeyRepository, KeyUsage, NewApiKey } from "../types.js";
import type { StoreContext } from "./context.js";

export class SqlKeyRepository implements KeyRepository {
  constructor(private readonly ctx: StoreContext) {}

  async insertKey(key: NewApiKey): Promise<void> {
    await this.ctx.mutate(async (trx) => {
      await trx.insertInto("api_keys").values(keyToRow(key)).execute();
      return true;
    });
  }

  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.ctx.db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? undefined : rowToKey(row);
  }

  async listKeys(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyRecord[]> {
    let q = this.ctx.db.selectFrom("api_keys").selectAll().orderBy("created_at").orderBy("id");
    if (!opts.includeRevoked) q = q.where("revoked_at", "is", null);
    return (await q.execute()).map(rowToKey);
  }

  /** Returns true only for the call that revoked the key: false when unknown or already revoked. */
  revokeKey(id: string, at: Date): Promise<boolean> {
    return this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("api_keys")
        .set({ revoked_at: at.getTime() })
        .where("id", "=", id)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }

  async setKeyExpiry(id: string, expiresAt: Date): Promise<void> {
    const changed = await this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("api_keys")
        .set({ expires_at: expiresAt.getTime() })
        .where("id", "=", id)
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
    if (!changed) throw new Error(`setKeyExpiry: no key with id ${id}`);
  }

  /**
   * Usage is bookkeeping, not a key mutation: it does not bump the keys revision. Rows are
   * updated in id order so replicas flushing at the same time cannot deadlock.
   */
  async recordKeyUsage(usage: KeyUsage[]): Promise<void> {
    if (usage.length === 0) return;
    const ordered = [...usage].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    await this.ctx.db.transaction().execute(async (trx) => {
      for (const u of ordered) {
        const at = u.lastUsedAt.getTime();
        await trx
          .updateTable("api_keys")
          .set((eb) => ({
            use_count: eb("use_count", "+", u.count),
            last_used_at: eb
              .case()
              .when(eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
              .then(at)
              .else(eb.ref("last_used_at"))
              .end(),
          }))
          .where("id", "=", u.id)
          .execute();
      }
    });
  }

  async keysRevision(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom("revisions")
      .select("value")
      .where("name", "=", "keys")
      .executeTakeFirstOrThrow(() => new Error("store schema is missing the 'keys' revision row"));
    return Number(row.value);
  }
}
