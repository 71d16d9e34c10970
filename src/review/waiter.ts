/**
 * Waiting for an approver's decision made anywhere: in this process (signed link, console)
 * or another one (`portcullis approvals approve` on the same store, another replica). The
 * store's change feed (SQLite data_version, polled every 250 ms by the process's one
 * poller; PostgreSQL LISTEN/NOTIFY) wakes the waiters through a FeedCache
 * (../store/feedCache.ts) whose reload re-reads the approvals someone waits for; a re-read
 * every 2 s (every 250 ms while the feed is down) is the fallback should a notification be
 * missed.
 */
import type { Logger } from "pino";
import { FeedCache } from "../store/feedCache.js";
import type { ApprovalRecord, Store } from "../store/types.js";

const TICK_MS = 250;
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
  private readonly waiters = new Set<Waiter>();
  /** Its "value" is the time of the last read; a reload settles the waiters decided meanwhile. */
  private readonly decisions: FeedCache<number>;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    this.decisions = new FeedCache(store, 0, { load: () => this.read(), eager: true });
  }

  start(): void {
    void this.decisions.start().catch((err: unknown) => this.log.warn({ err }, "approval change feed"));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const w of [...this.waiters]) w.settle({ kind: "aborted" });
    await this.decisions.close();
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
        this.timer = setInterval(() => this.tick(), TICK_MS);
        this.timer.unref();
      }
      // A decision may have landed between the caller's last read and this registration.
      this.decisions.invalidate();
    });
  }

  private tick(): void {
    if (Date.now() - this.decisions.value >= FALLBACK_READ_MS || !this.decisions.healthy()) {
      this.decisions.invalidate();
    }
  }

  /** Re-reads every approval someone waits for; settles those no longer pending. Never rejects. */
  private async read(): Promise<number> {
    const at = Date.now();
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
    return at;
  }
}
