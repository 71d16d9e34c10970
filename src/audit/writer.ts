/**
 * Group commit for audit records: the request path only pushes onto an array; a timer
 * writes the batch in one transaction every `flushIntervalMs` (or sooner when it fills).
 * A failed write is retried with the next batch and logged; records are never dropped
 * silently (the count of unwritten records is exported as a metric).
 */
import type { Logger } from "pino";
import type { AuditRecord, Store } from "../store/types.js";

export class AuditWriter {
  private queue: AuditRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly flushIntervalMs: number,
    private readonly maxBatch: number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  record(entry: AuditRecord): void {
    this.queue.push(entry);
    if (this.queue.length >= this.maxBatch) void this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.queue.length === 0) return Promise.resolve();
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.store
      .appendAudit(batch)
      .catch((err: unknown) => {
        this.log.error({ err, records: batch.length }, "audit write failed; will retry");
        this.queue = batch.concat(this.queue);
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.flush();
  }
}
