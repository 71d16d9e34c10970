/**
 * Waiting for an approver's decision made anywhere: in this process (signed link, console)
 * or another one (`portcullis approvals approve` on the same store, another replica). The
 * store's change feed (Store#watchKeys: SQLite data_version, polled cheaply every 250 ms
 * while a call waits; PostgreSQL LISTEN/NOTIFY) wakes the waiters, which re-read their
 * approval; a slower re-read every 2 s is the fallback should a notification be missed.
 */
import type { Logger } from "pino";
import type { ApprovalRecord, KeyWatch, Store } from "../store/types.js";

const FEED_POLL_MS = 250;
const FALLBACK_READ_MS = 2_000;

export type WaitOutcome =
  | { kind: "decided"; record: ApprovalRecord }
  | { kind: "timeout" }
  | { kind: "aborted" };

interface Waiter {
  id: string;
  settle(outcome: WaitOutcome): void;
}

export class ApprovalWaiter {
  private watch: KeyWatch | null = null;
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | null = null;
  private lastRead = 0;
  private reading = false;
  private again = false;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.watch = this.store.watchKeys(() => void this.read());
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const w of [...this.waiters]) w.settle({ kind: "aborted" });
    await this.watch?.close();
    this.watch = null;
  }

  /** Resolves once the approval is no longer pending, at the deadline, or when `signal` aborts. */
  wait(id: string, deadline: Date, signal: AbortSignal): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve({ kind: "aborted" });
      const timeout = setTimeout(
        () => waiter.settle({ kind: "timeout" }),
        Math.max(0, deadline.getTime() - Date.now()),
      );
      const onAbort = () => waiter.settle({ kind: "aborted" });
      const waiter: Waiter = {
        id,
        settle: (outcome) => {
          if (!this.waiters.delete(waiter)) return;
          clearTimeout(timeout);
          signal.removeEventListener("abort", onAbort);
          if (this.waiters.size === 0 && this.timer) {
            clearInterval(this.timer);
            this.timer = null;
          }
          resolve(outcome);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
      if (this.timer === null) {
        this.timer = setInterval(() => this.tick(), FEED_POLL_MS);
        this.timer.unref();
      }
      // A decision may have landed between the caller's last read and this registration.
      void this.read();
    });
  }

  private tick(): void {
    try {
      this.watch?.poll();
    } catch (err) {
      this.log.warn({ err }, "approval change feed poll failed");
    }
    if (Date.now() - this.lastRead >= FALLBACK_READ_MS || !(this.watch?.healthy() ?? false)) void this.read();
  }

  /** Re-reads every approval someone waits for; settles those no longer pending. */
  private async read(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        this.lastRead = Date.now();
        const ids = new Set([...this.waiters].map((w) => w.id));
        for (const id of ids) {
          let record: ApprovalRecord | undefined;
          try {
            record = await this.store.getApproval(id);
          } catch (err) {
            this.log.warn({ err, approvalId: id }, "cannot read approval; retrying");
            continue;
          }
          if (record === undefined || record.status === "pending") continue;
          for (const w of [...this.waiters]) if (w.id === id) w.settle({ kind: "decided", record });
        }
      } while (this.again);
    } finally {
      this.reading = false;
    }
  }
}
