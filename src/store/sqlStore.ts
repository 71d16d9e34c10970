/**
 * The Store implementation shared by SQLite and PostgreSQL: every query is written once
 * with Kysely. The dialect subclasses only open the connection, announce key changes to
 * other processes, and watch for theirs (see ./sqlite.ts and ./postgres.ts).
 */
import type { Kysely, Transaction } from "kysely";
import { type ApprovalsDatabase, approvalToRow, rowToApproval } from "./approvals.js";
import { registerAuditChain, registryTail } from "./auditRegistry.js";
import type { ChangeFeed, KeyWatch } from "./changeFeed.js";
import { migrateToLatest, type StoreDialect } from "./migrations/index.js";
import {
  type AuditRow,
  auditToRow,
  chainedAuditToRow,
  checkpointToRow,
  type Database,
  keyToRow,
  rowToAudit,
  rowToAuditChain,
  rowToAuditSigningKey,
  rowToCheckpoint,
  rowToKey,
} from "./rows.js";
import { acceptedRow, rowToToolPin, sightedRow, type ToolPinRow, type ToolPinsDatabase } from "./toolPins.js";
import type {
  ApiKeyRecord,
  ApprovalDecision,
  ApprovalDecisionOutcome,
  ApprovalRecord,
  ApprovalStatus,
  AuditAnchorProof,
  AuditChainInfo,
  AuditChainRow,
  AuditCheckpoint,
  AuditQuery,
  AuditRecord,
  AuditSigningKeyRecord,
  ChainedAuditRecord,
  KeyUsage,
  NewApiKey,
  NewApproval,
  NewAuditChain,
  Store,
  StoredAuditRecord,
  ToolAcceptOutcome,
  ToolAcceptRequest,
  ToolPinRecord,
  ToolPinStatus,
  ToolSighting,
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

  /** The store's one change feed (one listener or poller per process), fanned out to watchKeys(). */
  protected abstract readonly feed: ChangeFeed;

  /** Runs inside the transaction of every key mutation, after the revision bump. */
  protected abstract announceKeys(trx: Transaction<Database>, revision: number): Promise<void>;

  /** Runs after a key mutation committed. */
  protected keysCommitted(): void {}

  migrate(): Promise<void> {
    return migrateToLatest(this.db as Kysely<unknown>, this.kind);
  }

  watchKeys(onChange: () => void): KeyWatch {
    return this.feed.subscribe(onChange);
  }

  async close(): Promise<void> {
    await this.feed.close();
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

  async appendAuditChain(
    records: ChainedAuditRecord[],
    checkpoints: AuditCheckpoint[],
    register?: NewAuditChain,
  ): Promise<void> {
    if (records.length === 0 && checkpoints.length === 0) return;
    const rows = records.map(chainedAuditToRow);
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += AUDIT_CHUNK) {
        await trx
          .insertInto("audit_log")
          .values(rows.slice(i, i + AUDIT_CHUNK))
          .execute();
      }
      // After the records: on SQLite the transaction then already holds the write lock.
      if (register !== undefined) await registerAuditChain(trx, this.kind, register);
      if (checkpoints.length > 0) {
        await trx.insertInto("audit_checkpoints").values(checkpoints.map(checkpointToRow)).execute();
      }
    });
  }

  async listAuditChains(): Promise<AuditChainInfo[]> {
    const rows = await this.db
      .selectFrom("audit_chains")
      .selectAll()
      .orderBy("started_at")
      .orderBy("chain")
      .execute();
    return rows.map(rowToAuditChain);
  }

  auditRegistryTail(): Promise<{ seq: number; hash: string } | null> {
    return registryTail(this.db);
  }

  async auditChainTail(chain: string): Promise<{ chainSeq: number; hash: string } | null> {
    const row = await this.db
      .selectFrom("audit_log")
      .select(["chain_seq", "hash"])
      .where("chain", "=", chain)
      .orderBy("chain_seq", "desc")
      .limit(1)
      .executeTakeFirst();
    return row === undefined || row.chain_seq === null || row.hash === null
      ? null
      : { chainSeq: Number(row.chain_seq), hash: row.hash };
  }

  async readAuditChain(chain: string, afterChainSeq: number, limit: number): Promise<AuditChainRow[]> {
    const rows = await this.db
      .selectFrom("audit_log")
      .selectAll()
      .where("chain", "=", chain)
      .where("chain_seq", ">", afterChainSeq)
      .orderBy("chain_seq")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...r, chain_seq: Number(r.chain_seq) }) as AuditChainRow);
  }

  async auditChainsInLog(): Promise<{
    chains: string[];
    unchained: number;
    unchainedMaxSeq: number | null;
    unchainedNewest: Date | null;
  }> {
    const chains = await this.db
      .selectFrom("audit_log")
      .select("chain")
      .distinct()
      .where("chain", "is not", null)
      .execute();
    const { n, maxSeq, maxAt } = await this.db
      .selectFrom("audit_log")
      .select((eb) => [
        eb.fn.countAll<number>().as("n"),
        eb.fn.max("seq").as("maxSeq"),
        eb.fn.max("at").as("maxAt"),
      ])
      .where("chain", "is", null)
      .executeTakeFirstOrThrow();
    return {
      chains: chains.map((c) => c.chain as string).sort(),
      unchained: Number(n),
      unchainedMaxSeq: maxSeq === null ? null : Number(maxSeq),
      unchainedNewest: maxAt === null ? null : new Date(Number(maxAt)),
    };
  }

  async listAuditCheckpoints(chain?: string): Promise<AuditCheckpoint[]> {
    let q = this.db.selectFrom("audit_checkpoints").selectAll().orderBy("chain").orderBy("chain_seq");
    if (chain !== undefined) q = q.where("chain", "=", chain);
    return (await q.execute()).map(rowToCheckpoint);
  }

  async insertAuditSigningKey(key: AuditSigningKeyRecord): Promise<void> {
    await this.db
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
    const rows = await this.db
      .selectFrom("audit_signing_keys")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id")
      .execute();
    return rows.map(rowToAuditSigningKey);
  }

  async searchAudit(query: AuditQuery): Promise<StoredAuditRecord[]> {
    const limit = query.limit ?? DEFAULT_AUDIT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`searchAudit: limit must be a non-negative integer, got ${limit}`);
    }
    let q = this.db
      .selectFrom("audit_log")
      .selectAll()
      .orderBy("seq", query.order ?? "desc")
      .limit(limit);
    if (query.principal !== undefined) q = q.where("principal", "=", query.principal);
    if (query.server !== undefined) q = q.where("server", "=", query.server);
    if (query.tool !== undefined) q = q.where("tool", "=", query.tool);
    if (query.decision !== undefined) q = q.where("decision", "=", query.decision);
    if (query.decisionId !== undefined) q = q.where("decision_id", "=", query.decisionId);
    if (query.since !== undefined) q = q.where("at", ">=", query.since.getTime());
    if (query.until !== undefined) q = q.where("at", "<", query.until.getTime());
    if (query.afterSeq !== undefined) q = q.where("seq", ">", query.afterSeq);
    return (await q.execute()).map((r) => rowToAudit(r as AuditRow));
  }

  async purgeAuditChain(
    chain: string,
    anchor: { chainSeq: number; hash: string; proof: AuditAnchorProof },
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
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

  async purgeUnchainedAudit(before: Date): Promise<number> {
    const res = await this.db
      .deleteFrom("audit_log")
      .where("chain", "is", null)
      .where("at", "<", before.getTime())
      .executeTakeFirst();
    return Number(res.numDeletedRows);
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

  /** The tool_pins table (migration 004) lives beside the core tables. */
  private get pins(): Kysely<ToolPinsDatabase> {
    return this.db as unknown as Kysely<ToolPinsDatabase>;
  }

  async listToolPins(opts: { server?: string; status?: ToolPinStatus } = {}): Promise<ToolPinRecord[]> {
    let q = this.pins.selectFrom("tool_pins").selectAll().orderBy("server").orderBy("tool");
    if (opts.server !== undefined) q = q.where("server", "=", opts.server);
    if (opts.status !== undefined) q = q.where("status", "=", opts.status);
    return (await q.execute()).map(rowToToolPin);
  }

  async getToolPin(server: string, tool: string): Promise<ToolPinRecord | undefined> {
    const row = await this.pins
      .selectFrom("tool_pins")
      .selectAll()
      .where("server", "=", server)
      .where("tool", "=", tool)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToToolPin(row);
  }

  async toolPinsRevision(): Promise<number> {
    const row = await this.pins
      .selectFrom("revisions")
      .select("value")
      .where("name", "=", "tool_pins")
      .executeTakeFirstOrThrow(() => new Error("store schema is missing the 'tool_pins' revision row"));
    return Number(row.value);
  }

  /**
   * Every tool-pin write first bumps the `tool_pins` revision: that takes the writer lock
   * (SQLite) or the row lock (PostgreSQL) before anything is read, so writers in several
   * processes apply the pinning rule one after another to current rows.
   */
  private async lockToolPins(trx: Transaction<ToolPinsDatabase>): Promise<void> {
    const res = await trx
      .updateTable("revisions")
      .set((eb) => ({ value: eb("value", "+", 1) }))
      .where("name", "=", "tool_pins")
      .executeTakeFirst();
    if (res.numUpdatedRows === 0n) throw new Error("store schema is missing the 'tool_pins' revision row");
  }

  async recordToolSightings(sightings: ToolSighting[]): Promise<ToolPinRecord[]> {
    if (sightings.length === 0) return [];
    const result = new Map<string, ToolPinRow>();
    await this.mutateKeys(async (t) => {
      const trx = t as unknown as Transaction<ToolPinsDatabase>;
      result.clear();
      await this.lockToolPins(trx);
      const servers = [...new Set(sightings.map((s) => s.server))];
      const rows = new Map<string, ToolPinRow>();
      const existing = await trx.selectFrom("tool_pins").selectAll().where("server", "in", servers).execute();
      for (const row of existing) rows.set(pinKey(row.server, row.tool), row);
      const inserts = new Map<string, ToolPinRow>();
      const updates = new Map<string, ToolPinRow>();
      for (const s of sightings) {
        const key = pinKey(s.server, s.tool);
        const row = rows.get(key);
        const next = sightedRow(row, s);
        if (next !== null) {
          rows.set(key, next);
          if (inserts.has(key) || row === undefined) inserts.set(key, next);
          else updates.set(key, next);
        }
        result.set(key, next ?? (row as ToolPinRow));
      }
      const fresh = [...inserts.values()];
      for (let i = 0; i < fresh.length; i += PIN_CHUNK) {
        await trx
          .insertInto("tool_pins")
          .values(fresh.slice(i, i + PIN_CHUNK))
          .execute();
      }
      for (const row of updates.values()) await updateToolPin(trx, row);
      // New pins are news too: a replica that never saw this server's tools/list learns their
      // risk tiers from the feed instead of treating them as unknown (destructive) until restart.
      return inserts.size > 0 || updates.size > 0;
    });
    return [...result.values()].map(rowToToolPin);
  }

  async acceptToolPins(
    requests: ToolAcceptRequest[],
    opts: { at: Date; by: string | null },
  ): Promise<ToolAcceptOutcome[]> {
    const outcomes: ToolAcceptOutcome[] = [];
    if (requests.length === 0) return outcomes;
    await this.mutateKeys(async (t) => {
      const trx = t as unknown as Transaction<ToolPinsDatabase>;
      outcomes.length = 0;
      await this.lockToolPins(trx);
      let accepted = false;
      for (const req of requests) {
        const row = await trx
          .selectFrom("tool_pins")
          .selectAll()
          .where("server", "=", req.server)
          .where("tool", "=", req.tool)
          .executeTakeFirst();
        const base = { server: req.server, tool: req.tool };
        if (row === undefined) {
          outcomes.push({ ...base, outcome: "unknown", previousHash: null, record: null });
        } else if (req.expectedHash !== undefined && req.expectedHash !== row.current_hash) {
          outcomes.push({
            ...base,
            outcome: "hash_mismatch",
            previousHash: row.pinned_hash,
            record: rowToToolPin(row),
          });
        } else if (row.status === "pinned") {
          outcomes.push({
            ...base,
            outcome: "already_pinned",
            previousHash: row.pinned_hash,
            record: rowToToolPin(row),
          });
        } else {
          const next = acceptedRow(row, opts.at, opts.by);
          await updateToolPin(trx, next);
          accepted = true;
          outcomes.push({
            ...base,
            outcome: "accepted",
            previousHash: row.pinned_hash,
            record: rowToToolPin(next),
          });
        }
      }
      return accepted;
    });
    return outcomes;
  }

  /** The approvals table (migration 007). */
  private get approvalsDb(): Kysely<ApprovalsDatabase> {
    return this.db as unknown as Kysely<ApprovalsDatabase>;
  }

  async insertApproval(approval: NewApproval): Promise<void> {
    await this.approvalsDb.insertInto("approvals").values(approvalToRow(approval)).execute();
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = await this.approvalsDb
      .selectFrom("approvals")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row === undefined ? undefined : rowToApproval(row);
  }

  async pendingApprovalsOf(
    principalId: string,
    at: Date,
  ): Promise<{ count: number; nextExpiry: Date | null }> {
    const row = await this.approvalsDb
      .selectFrom("approvals")
      .select((eb) => [eb.fn.countAll().as("count"), eb.fn.min("expires_at").as("next")])
      .where("status", "=", "pending")
      .where("principal_id", "=", principalId)
      .where("expires_at", ">", at.getTime())
      .executeTakeFirst();
    const next = row?.next ?? null;
    return { count: Number(row?.count ?? 0), nextExpiry: next === null ? null : new Date(Number(next)) };
  }

  async listApprovals(opts: { status?: ApprovalStatus; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = opts.limit ?? DEFAULT_AUDIT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`listApprovals: limit must be a non-negative integer, got ${limit}`);
    }
    let q = this.approvalsDb
      .selectFrom("approvals")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id")
      .limit(limit);
    if (opts.status !== undefined) q = q.where("status", "=", opts.status);
    return (await q.execute()).map(rowToApproval);
  }

  /**
   * Every approval state change is a conditional UPDATE (so two deciders, or two consumers,
   * cannot both win) inside mutateCredentials: running gateways waiting on the approval hear
   * of it through the change feed (SQLite data_version, PostgreSQL NOTIFY).
   */
  async decideApproval(id: string, d: ApprovalDecision): Promise<ApprovalDecisionOutcome> {
    const at = d.at.getTime();
    const changed = await this.mutateCredentials<ApprovalsDatabase>(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({
          status: d.decision,
          decided_at: at,
          decided_by: d.by,
          decided_via: d.via,
          reason: d.reason,
          ...(d.decision === "approved" && d.expiresAt !== undefined
            ? { expires_at: d.expiresAt.getTime() }
            : {}),
        })
        .where("id", "=", id)
        .where("status", "=", "pending")
        .where("expires_at", ">", at)
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
    const record = (await this.getApproval(id)) ?? null;
    return { outcome: changed ? "decided" : record === null ? "unknown" : "not_pending", record };
  }

  consumeApproval(id: string, at: Date): Promise<boolean> {
    return this.mutateCredentials<ApprovalsDatabase>(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({ status: "consumed", consumed_at: at.getTime() })
        .where("id", "=", id)
        .where("status", "=", "approved")
        .where("expires_at", ">", at.getTime())
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }

  expireApproval(id: string, at: Date): Promise<boolean> {
    return this.mutateCredentials<ApprovalsDatabase>(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({ status: "expired" })
        .where("id", "=", id)
        .where("status", "in", ["pending", "approved"])
        .where("expires_at", "<=", at.getTime())
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }
}

/** Tool pins per INSERT statement (11 columns): under both dialects' bind-parameter limits. */
const PIN_CHUNK = 500;

function pinKey(server: string, tool: string): string {
  return JSON.stringify([server, tool]);
}

async function updateToolPin(trx: Transaction<ToolPinsDatabase>, row: ToolPinRow): Promise<void> {
  const { server, tool, ...rest } = row;
  await trx
    .updateTable("tool_pins")
    .set(rest)
    .where("server", "=", server)
    .where("tool", "=", tool)
    .execute();
}
