/**
 * The one ordered writer of this process's audit chain (src/audit/chain.ts).
 *
 * - `record()` (read tier, refusals, administrative events): the request path only pushes
 *   onto the queue; a timer writes the queue in one transaction every `flushIntervalMs`
 *   (50 ms by default), or sooner when it fills (group commit).
 * - `recordDurable()` (write- and destructive-tier calls, before they are forwarded): the same
 *   queue, flushed at once; resolves only when the transaction holding the record committed,
 *   rejects when it failed (the caller then refuses the call: fail closed).
 *
 * Both paths go through one queue and one flush at a time, so records are chained in the
 * order they were handed over and the chain never forks. Arguments are redacted in the flush
 * (secretlint is too slow for the request path). A failed group-commit batch is retried with
 * the next one and logged (the unwritten count is exported as a metric), after a delay that
 * doubles while the store keeps failing; after any failure the chain's tail is re-read from
 * the store before the next write, so an ambiguous commit cannot fork the chain either. Every
 * `checkpointEvery` records or `checkpointIntervalSeconds`, and at close, the flush also
 * stores a signed checkpoint (src/audit/checkpoints.ts).
 *
 * No single record can stop the writer. Every record is first made storable
 * (src/audit/storable.ts; a batch is chained in src/audit/chainBatch.ts) and its arguments redacted one by one (a value that cannot be read
 * becomes a marker with its hash, src/audit/redact.ts). Should the store still refuse a batch
 * while it answers, the batch is halved until the refused record is written alone, and a
 * record refused alone is stored as its hash ({@link refusedRecord}): the records behind it
 * go on, and a durable caller is answered (committed or refused), never left waiting.
 */
import type { Logger } from "pino";
import type { AuditCheckpoint, AuditRecord, Store } from "../store/types.js";
import { GENESIS_HASH, newChainId } from "./chain.js";
import { type BatchEntry, chainBatch } from "./chainBatch.js";
import { auditKeyFingerprint, type CheckpointSigner, loadCheckpointSigner } from "./checkpoints.js";
import { logCheckpoint } from "./loggedCheckpoints.js";
import { backlogOverflowed, retentionPurged } from "./records.js";
import {
  type ArgumentsMode,
  type ArgumentsRedactor,
  createArgumentsRedactor,
  DEFAULT_REDACTION_LIMITS,
  type RedactionLimits,
} from "./redact.js";
import { newRegistration } from "./registry.js";
import { purgeExpiredAudit } from "./retention.js";

export interface AuditWriterOptions {
  flushIntervalMs: number;
  maxBatch: number;
  /** A signed checkpoint after this many records … */
  checkpointEvery: number;
  /** … or this many seconds after the last one, whichever comes first (when records were written). */
  checkpointIntervalSeconds: number;
  /** Purge records older than this many days (whole checkpointed ranges only); unset keeps all. */
  retentionDays?: number | undefined;
  arguments: ArgumentsMode;
  redaction?: RedactionLimits;
  /** Records waiting for the store, at most, before {@link AuditWriter.accepting} says no. */
  maxPendingRecords?: number;
  /** Environment named in the records the writer makes itself (retention). */
  environment?: string;
  /** A batch could not be written (metrics); its group-committed records are retried. */
  onWriteError?: (err: unknown) => void;
}

interface Pending extends BatchEntry {
  durable: { resolve(): void; reject(err: unknown): void } | null;
}

/** How often retention runs when `retentionDays` is set. */
const RETENTION_EVERY_MS = 3600_000;
/** Default of `maxPendingRecords`: about 100 MB of records at most during a store outage. */
const DEFAULT_MAX_PENDING_RECORDS = 100_000;

/** Longest wait between retries while the store keeps failing (short: a returning store is written to within a second). */
const MAX_RETRY_DELAY_MS = 1_000;

export class AuditWriter {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private lastHash = GENESIS_HASH;
  private checkpointSeq = 0;
  private lastCheckpointAt = Date.now();
  private resync = false;
  /** The chain joins the signed registry with its first records (src/audit/registry.ts). */
  private registered = false;
  private readonly startedAt = new Date();
  private forceCheckpoint = false;
  private closed = false;
  /** Records per transaction: `maxBatch`, halved after each refused batch, doubled after each commit. */
  private batchLimit: number;
  /** Wait before the next retry; 0 while writes succeed. */
  private retryDelay = 0;
  /** Requests refused unrecorded while the backlog was full (see accepting()). */
  private unrecorded = 0;
  /** Records of the batch being written now (out of the queue, not yet committed). */
  private writing = 0;

  private constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly opts: AuditWriterOptions,
    readonly chain: string,
    private readonly signer: CheckpointSigner,
    private readonly redactor: ArgumentsRedactor,
  ) {
    this.batchLimit = opts.maxBatch;
  }

  /**
   * Opens a new chain for this process (registered in the signed registry with its first
   * records), loads or creates the checkpoint key (sealed under `secret`), and starts the
   * checkpoint and retention timers.
   */
  static async open(
    store: Store,
    log: Logger,
    opts: AuditWriterOptions,
    secret: Buffer,
  ): Promise<AuditWriter> {
    const signer = await loadCheckpointSigner(store, secret);
    const redactor = await createArgumentsRedactor(
      opts.arguments,
      opts.redaction ?? DEFAULT_REDACTION_LIMITS,
    );
    const chain = newChainId();
    const writer = new AuditWriter(store, log, opts, chain, signer, redactor);
    writer.checkpointTimer = setInterval(() => {
      if (writer.seq > writer.checkpointSeq || writer.queue.length > 0) {
        writer.forceCheckpoint = true;
        void writer.flush();
      }
    }, opts.checkpointIntervalSeconds * 1000);
    writer.checkpointTimer.unref();
    if (opts.retentionDays !== undefined) {
      const run = () =>
        void writer.purgeExpired().catch((err: unknown) => log.warn({ err }, "audit retention failed"));
      writer.retentionTimer = setInterval(run, RETENTION_EVERY_MS);
      writer.retentionTimer.unref();
      setImmediate(run);
    }
    const fingerprint = `sha256:${auditKeyFingerprint(signer.publicKey)}`;
    if (signer.created) {
      // The only moment the store's key is known to be ours: the operator pins it from here.
      log.warn(
        {
          event: "audit.key_created",
          keyId: signer.keyId,
          fingerprint,
          publicKey: signer.publicKey.export({ format: "pem", type: "spki" }).toString(),
        },
        "new audit checkpoint key: keep its public key outside the store (portcullis audit public-key > audit-key.pem) and verify with portcullis audit verify --public-key audit-key.pem",
      );
    }
    log.info({ event: "audit.chain", chain, keyId: signer.keyId, fingerprint }, "audit chain opened");
    return writer;
  }

  /** Environment named in the writer's own records. */
  private get environment(): string {
    return this.opts.environment ?? "-";
  }

  /** Records not yet committed. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * False while the backlog is full (the store has been failing): the request path then
   * refuses before doing any work, so memory stays bounded during an outage of any length
   * and nothing is forwarded that could not be recorded.
   */
  accepting(): boolean {
    return this.queue.length + this.writing < (this.opts.maxPendingRecords ?? DEFAULT_MAX_PENDING_RECORDS);
  }

  /** A request refused because the backlog was full; one record counts them once it drains. */
  noteUnrecorded(): void {
    this.unrecorded++;
  }

  /** Group commit: written within `flushIntervalMs`. */
  record(entry: AuditRecord): void {
    this.queue.push({ entry, durable: null, refused: null });
    // While retries back off, the retry timer (already set) decides: a full queue does not hammer the store.
    if (this.queue.length >= this.opts.maxBatch && this.retryDelay === 0) void this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.opts.flushIntervalMs);
      this.timer.unref();
    }
  }

  /**
   * Resolves once the record is committed (with every record handed over before it); rejects
   * when the write failed: the caller must then not go ahead with the call it records.
   */
  recordDurable(entry: AuditRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error("audit writer is closed"));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ entry, durable: { resolve, reject }, refused: null });
      void this.flush();
    });
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    const checkpointOnly = this.forceCheckpoint && this.seq > this.checkpointSeq;
    if (this.queue.length === 0 && !checkpointOnly) return Promise.resolve();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.queue.splice(0, this.batchLimit);
    this.writing = batch.length;
    const written = this.write(batch);
    this.flushing = written.then(
      () => {},
      () => {},
    );
    this.flushing = this.flushing.finally(() => {
      this.flushing = null;
      this.writing = 0;
    });
    // Whatever arrived meanwhile goes next, at once; after a failure the retry timer decides.
    return written.then((ok) => (ok && this.queue.length > 0 ? this.flush() : undefined));
  }

  private async write(batch: Pending[]): Promise<boolean> {
    /**
     * Whether the store answered a read in this attempt (after a failure): only then can a
     * refusal be the record's fault rather than an outage that began with this write.
     */
    let answered = false;
    let rows: readonly string[] = [];
    try {
      if (this.resync) {
        const tail = await this.store.auditChainTail(this.chain);
        this.seq = tail?.chainSeq ?? 0;
        this.lastHash = tail?.hash ?? GENESIS_HASH;
        const checkpoints = await this.store.listAuditCheckpoints(this.chain);
        this.checkpointSeq = checkpoints.at(-1)?.chainSeq ?? 0;
        this.registered ||= tail !== null;
        this.resync = false;
        answered = true;
      }
      const args = await this.redactor.redact(
        batch.map((p) => (p.refused === null ? p.entry.arguments : undefined)),
      );
      const chained = chainBatch(this.chain, { seq: this.seq, hash: this.lastHash }, batch, args);
      rows = chained.rows;
      const { records, seq, hash: prev } = chained;
      const checkpoints: AuditCheckpoint[] = [];
      const now = Date.now();
      if (
        seq > this.checkpointSeq &&
        (this.forceCheckpoint ||
          seq - this.checkpointSeq >= this.opts.checkpointEvery ||
          now - this.lastCheckpointAt >= this.opts.checkpointIntervalSeconds * 1000)
      ) {
        // A checkpoint names the newest registry entry, so deleting the newest chains shows too.
        const registry = await this.store.auditRegistryTail();
        checkpoints.push(
          this.signer.sign({
            chain: this.chain,
            chainSeq: seq,
            hash: prev,
            count: seq,
            at: new Date(now),
            registry,
          }),
        );
      }
      const register =
        this.registered || records.length === 0
          ? undefined
          : newRegistration(this.chain, this.startedAt, this.signer);
      // Nothing changes a record between hashing and the row mapping inside appendAuditChain: what is hashed is what is stored.
      await this.store.appendAuditChain(records, checkpoints, register);
      if (register !== undefined) this.registered = true;
      this.seq = seq;
      this.lastHash = prev;
      for (const c of checkpoints) {
        this.checkpointSeq = c.chainSeq;
        this.lastCheckpointAt = now;
        this.forceCheckpoint = false;
        logCheckpoint(this.log, c);
      }
      for (const p of batch) p.durable?.resolve();
      this.batchLimit = Math.min(this.opts.maxBatch, this.batchLimit * 2);
      this.retryDelay = 0;
      if (this.unrecorded > 0 && this.accepting()) this.recordUnrecorded();
      return true;
    } catch (err) {
      this.resync = true;
      this.opts.onWriteError?.(err);
      const retried = batch.filter((p) => p.durable === null);
      // Narrow down to the record the store refuses (harmless during an outage: the limit
      // doubles back with each commit), and once it answered but refused that record alone,
      // store it as its hash.
      if (batch.length > 1) this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      else if (answered && batch[0] !== undefined && batch[0].refused === null) {
        batch[0].refused = { row: rows[0] ?? "", error: err instanceof Error ? err.message : String(err) };
      }
      this.retryDelay = Math.min(
        MAX_RETRY_DELAY_MS,
        Math.max(this.opts.flushIntervalMs, this.retryDelay * 2),
      );
      this.log.error(
        { err, records: batch.length, retried: retried.length, retryInMs: this.retryDelay },
        "audit write failed; group-committed records will be retried, durable ones refused",
      );
      for (const p of batch) p.durable?.reject(err);
      this.queue = retried.concat(this.queue);
      if (retried.length > 0 && !this.closed) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.flush();
        }, this.retryDelay);
        this.timer.unref();
      }
      return false;
    }
  }

  /** The one record that stands for the requests refused while the backlog was full. */
  private recordUnrecorded(): void {
    const refused = this.unrecorded;
    this.unrecorded = 0;
    this.record(backlogOverflowed(this.environment, refused));
  }

  /** Stores a signed checkpoint of everything written so far (when anything was). */
  checkpoint(): Promise<void> {
    this.forceCheckpoint = true;
    return this.flush();
  }

  /** Retention (`retentionDays`): see src/audit/retention.ts. Records what it purged. */
  async purgeExpired(now = new Date()): Promise<number> {
    if (this.opts.retentionDays === undefined) return 0;
    const result = await purgeExpiredAudit(this.store, this.opts.retentionDays, this.signer, now);
    if (result.records > 0)
      this.record(retentionPurged(this.environment, this.opts.retentionDays, result, now));
    return result.records;
  }

  async close(): Promise<void> {
    for (const t of [this.timer, this.checkpointTimer, this.retentionTimer]) {
      if (t) clearTimeout(t);
    }
    this.timer = null;
    await this.flush();
    await this.checkpoint();
    this.closed = true;
  }
}
