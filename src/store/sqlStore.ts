/**
 * The Store implementation shared by SQLite and PostgreSQL: every query is written once
 * with Kysely. The dialect subclasses only open the connection, announce key changes to
 * other processes, and watch for theirs (see ./sqlite.ts and ./postgres.ts).
 */
import type { Kysely, Transaction } from "kysely";
import { migrateToLatest, type StoreDialect } from "./migrations/index.js";
import { auditToRow, type Database, keyToRow, rowToAudit, rowToKey } from "./rows.js";
import type {
  ApiKeyRecord,
  AuditRecord,
  KeyUsage,
  KeyWatch,
  NewApiKey,
  Store,
  StoredAuditRecord,
} from "./types.js";

/** Rows per INSERT statement: keeps audit batches under both dialects' bind-parameter limits. */
const AUDIT_CHUNK = 500;
/** listAudit() without a limit returns at most this many records. */
export const DEFAULT_AUDIT_LIMIT = 100;

export abstract class SqlStore implements Store {
  constructor(
    readonly kind: StoreDialect,
    protected readonly db: Kysely<Database>,
  ) {}

  /** Open watches, closed with the store. */
  private readonly watches = new Set<KeyWatch>();

  /** Creates the dialect's change watch. */
  protected abstract createWatch(onChange: () => void): KeyWatch;

  /** Runs inside the transaction of every key mutation, after the revision bump. */
  protected abstract announceKeys(trx: Transaction<Database>, revision: number): Promise<void>;

  /** Runs after a key mutation committed. */
  protected keysCommitted(): void {}

  migrate(): Promise<void> {
    return migrateToLatest(this.db as Kysely<unknown>, this.kind);
  }

  watchKeys(onChange: () => void): KeyWatch {
    const inner = this.createWatch(onChange);
    const watch: KeyWatch = {
      poll: () => inner.poll(),
      healthy: () => inner.healthy(),
      close: async () => {
        this.watches.delete(watch);
        await inner.close();
      },
    };
    this.watches.add(watch);
    return watch;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.close()));
    await this.db.destroy();
  }

  /**
   * Runs a key mutation in one transaction with the revision bump and the announcement.
   * `fn` returns whether it changed anything; nothing is bumped otherwise.
   */
  private async mutateKeys(fn: (trx: Transaction<Database>) => Promise<boolean>): Promise<boolean> {
    const changed = await this.db.transaction().execute(async (trx) => {
      if (!(await fn(trx))) return false;
      const { value } = await trx
        .updateTable("revisions")
        .set((eb) => ({ value: eb("value", "+", 1) }))
        .where("name", "=", "keys")
        .returning("value")
        .executeTakeFirstOrThrow(() => new Error("store schema is missing the 'keys' revision row"));
      await this.announceKeys(trx, Number(value));
      return true;
    });
    if (changed) this.keysCommitted();
    return changed;
  }

  mutateCredentials<DB>(change: (trx: Transaction<DB>) => Promise<boolean>): Promise<boolean> {
    return this.mutateKeys((trx) => change(trx as unknown as Transaction<DB>));
  }

  async insertKey(key: NewApiKey): Promise<void> {
    await this.mutateKeys(async (trx) => {
      await trx.insertInto("api_keys").values(keyToRow(key)).execute();
      return true;
    });
  }

  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? undefined : rowToKey(row);
  }

  async listKeys(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyRecord[]> {
    let q = this.db.selectFrom("api_keys").selectAll().orderBy("created_at").orderBy("id");
    if (!opts.includeRevoked) q = q.where("revoked_at", "is", null);
    return (await q.execute()).map(rowToKey);
  }

  /** Returns true only for the call that revoked the key: false when unknown or already revoked. */
  revokeKey(id: string, at: Date): Promise<boolean> {
    return this.mutateKeys(async (trx) => {
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
    const changed = await this.mutateKeys(async (trx) => {
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
    await this.db.transaction().execute(async (trx) => {
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
    const row = await this.db
      .selectFrom("revisions")
      .select("value")
      .where("name", "=", "keys")
      .executeTakeFirstOrThrow(() => new Error("store schema is missing the 'keys' revision row"));
    return Number(row.value);
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = records.map(auditToRow);
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += AUDIT_CHUNK) {
        await trx
          .insertInto("audit_log")
          .values(rows.slice(i, i + AUDIT_CHUNK))
          .execute();
      }
    });
  }

  /** Newest first; at most `limit` records (default DEFAULT_AUDIT_LIMIT). */
  async listAudit(
    opts: { limit?: number; credentialId?: string; decisionId?: string } = {},
  ): Promise<StoredAuditRecord[]> {
    const limit = opts.limit ?? DEFAULT_AUDIT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`listAudit: limit must be a non-negative integer, got ${limit}`);
    }
    let q = this.db.selectFrom("audit_log").selectAll().orderBy("seq", "desc").limit(limit);
    if (opts.credentialId !== undefined) q = q.where("credential_id", "=", opts.credentialId);
    if (opts.decisionId !== undefined) q = q.where("decision_id", "=", opts.decisionId);
    return (await q.execute()).map(rowToAudit);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("settings")
      .select("value")
      .where("key", "=", key)
      .executeTakeFirst();
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db
      .insertInto("settings")
      .values({ key, value })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value: (eb) => eb.ref("excluded.value") }))
      .execute();
  }
}
