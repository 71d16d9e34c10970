/**
 * The Store shared by SQLite and PostgreSQL: the composition of one repository per concept
 * (./repositories/, every query written once with Kysely over ./schema.ts) and the change
 * feed. The dialect subclasses only open the connection, announce key changes to other
 * processes, and watch for theirs (see ./sqlite.ts and ./postgres.ts).
 */
import type { Kysely, Transaction } from "kysely";
import type { AuditChainRepository, AuditRepository } from "./auditTypes.js";
import type { ChangeFeed, KeyWatch } from "./changeFeed.js";
import { migrateToLatest, type StoreDialect } from "./migrations/index.js";
import { SqlApprovalRepository } from "./repositories/approvals.js";
import { SqlAuditChainRepository } from "./repositories/auditChains.js";
import { type AuditBatchInsert, multiRowAuditInsert } from "./repositories/auditInsert.js";
import { SqlAuditRepository } from "./repositories/auditLog.js";
import type { StoreContext } from "./repositories/context.js";
import { SqlKeyRepository } from "./repositories/keys.js";
import { SqlSettingsRepository } from "./repositories/settings.js";
import { SqlTaskRepository } from "./repositories/tasks.js";
import { SqlToolPinRepository } from "./repositories/toolPins.js";
import type { Schema } from "./schema.js";
import type { TaskRepository } from "./taskTypes.js";
import type {
  ApprovalRepository,
  KeyRepository,
  SettingsRepository,
  Store,
  ToolPinRepository,
} from "./types.js";

export abstract class SqlStore implements Store {
  private readonly keys: KeyRepository;
  private readonly audit: AuditRepository;
  private readonly auditChains: AuditChainRepository;
  private readonly toolPins: ToolPinRepository;
  private readonly approvals: ApprovalRepository;
  private readonly settings: SettingsRepository;
  private readonly tasks: TaskRepository;

  constructor(
    readonly kind: StoreDialect,
    protected readonly db: Kysely<Schema>,
    auditInsert: AuditBatchInsert = multiRowAuditInsert(),
  ) {
    const ctx: StoreContext = { kind, db, mutate: (fn) => this.mutateKeys(fn) };
    this.keys = new SqlKeyRepository(ctx);
    this.audit = new SqlAuditRepository(ctx, auditInsert);
    this.auditChains = new SqlAuditChainRepository(ctx);
    this.toolPins = new SqlToolPinRepository(ctx);
    this.approvals = new SqlApprovalRepository(ctx);
    this.settings = new SqlSettingsRepository(ctx);
    this.tasks = new SqlTaskRepository(ctx);
  }

  // ---- The change feed (watches and the keys revision): kept as one block. ----

  /** The store's one change feed (one listener or poller per process), fanned out to watchKeys(). */
  protected abstract readonly feed: ChangeFeed;

  /** Runs inside the transaction of every key mutation, after the revision bump. */
  protected abstract announceKeys(trx: Transaction<Schema>, revision: number): Promise<void>;

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
  private async mutateKeys(fn: (trx: Transaction<Schema>) => Promise<boolean>): Promise<boolean> {
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

  mutateCredentials(change: (trx: Transaction<Schema>) => Promise<boolean>): Promise<boolean> {
    return this.mutateKeys(change);
  }

  // ---- End of the change feed block. ----

  oauthDatabase(): Kysely<Schema> {
    return this.db;
  }

  // Keys.
  insertKey: Store["insertKey"] = (key) => this.keys.insertKey(key);
  getKey: Store["getKey"] = (id) => this.keys.getKey(id);
  listKeys: Store["listKeys"] = (opts) => this.keys.listKeys(opts);
  revokeKey: Store["revokeKey"] = (id, at) => this.keys.revokeKey(id, at);
  setKeyExpiry: Store["setKeyExpiry"] = (id, expiresAt) => this.keys.setKeyExpiry(id, expiresAt);
  recordKeyUsage: Store["recordKeyUsage"] = (usage) => this.keys.recordKeyUsage(usage);
  keysRevision: Store["keysRevision"] = () => this.keys.keysRevision();

  // Audit records.
  appendAudit: Store["appendAudit"] = (records) => this.audit.appendAudit(records);
  listAudit: Store["listAudit"] = (opts) => this.audit.listAudit(opts);
  appendAuditChain: Store["appendAuditChain"] = (records, checkpoints, register) =>
    this.audit.appendAuditChain(records, checkpoints, register);
  auditChainTail: Store["auditChainTail"] = (chain) => this.audit.auditChainTail(chain);
  readAuditChain: Store["readAuditChain"] = (chain, after, limit) =>
    this.audit.readAuditChain(chain, after, limit);
  auditChainsInLog: Store["auditChainsInLog"] = () => this.audit.auditChainsInLog();
  searchAudit: Store["searchAudit"] = (query) => this.audit.searchAudit(query);
  purgeUnchainedAudit: Store["purgeUnchainedAudit"] = (before) => this.audit.purgeUnchainedAudit(before);

  // Audit chains: registry, checkpoints, signing keys, retention.
  listAuditChains: Store["listAuditChains"] = () => this.auditChains.listAuditChains();
  auditRegistryTail: Store["auditRegistryTail"] = () => this.auditChains.auditRegistryTail();
  listAuditCheckpoints: Store["listAuditCheckpoints"] = (chain) =>
    this.auditChains.listAuditCheckpoints(chain);
  insertAuditSigningKey: Store["insertAuditSigningKey"] = (key) =>
    this.auditChains.insertAuditSigningKey(key);
  listAuditSigningKeys: Store["listAuditSigningKeys"] = () => this.auditChains.listAuditSigningKeys();
  purgeAuditChain: Store["purgeAuditChain"] = (chain, anchor) =>
    this.auditChains.purgeAuditChain(chain, anchor);

  // Tool pins.
  listToolPins: Store["listToolPins"] = (opts) => this.toolPins.listToolPins(opts);
  getToolPin: Store["getToolPin"] = (server, tool) => this.toolPins.getToolPin(server, tool);
  toolPinsRevision: Store["toolPinsRevision"] = () => this.toolPins.toolPinsRevision();
  recordToolSightings: Store["recordToolSightings"] = (s) => this.toolPins.recordToolSightings(s);
  acceptToolPins: Store["acceptToolPins"] = (requests, opts) => this.toolPins.acceptToolPins(requests, opts);

  // Approvals.
  insertApproval: Store["insertApproval"] = (a) => this.approvals.insertApproval(a);
  getApproval: Store["getApproval"] = (id) => this.approvals.getApproval(id);
  listApprovals: Store["listApprovals"] = (opts) => this.approvals.listApprovals(opts);
  decideApproval: Store["decideApproval"] = (id, d) => this.approvals.decideApproval(id, d);
  consumeApproval: Store["consumeApproval"] = (id, at) => this.approvals.consumeApproval(id, at);
  expireApproval: Store["expireApproval"] = (id, at) => this.approvals.expireApproval(id, at);
  pendingApprovalsOf: Store["pendingApprovalsOf"] = (principal, at) =>
    this.approvals.pendingApprovalsOf(principal, at);

  // Tasks.
  insertTask: Store["insertTask"] = (t) => this.tasks.insertTask(t);
  getTask: Store["getTask"] = (id) => this.tasks.getTask(id);
  listTasks: Store["listTasks"] = (q) => this.tasks.listTasks(q);
  liveTasks: Store["liveTasks"] = (at) => this.tasks.liveTasks(at);
  endTask: Store["endTask"] = (id, end) => this.tasks.endTask(id, end);
  purgeTasks: Store["purgeTasks"] = (before) => this.tasks.purgeTasks(before);
  consumeTaskCall: Store["consumeTaskCall"] = (id, at) => this.tasks.consumeTaskCall(id, at);

  // Settings.
  getSetting: Store["getSetting"] = (key) => this.settings.getSetting(key);
  setSetting: Store["setSetting"] = (key, value) => this.settings.setSetting(key, value);
}
