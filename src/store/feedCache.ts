/**
 * One in-memory value that follows the store's change feed (./changeFeed.ts): the keyring,
 * the machine-client roster, the tool pins and the approval waiter each hold one, instead of
 * four copies of the same reload logic. Modelled on jose's remote JWKS cache
 * (`jwks/remote.ts`): one value, at most one reload in flight, a health flag.
 *
 * - `refresh()` is what the request path calls. When nothing changed it is a few property
 *   reads and returns undefined; after a change it returns the reload's promise, so the
 *   request that notices a revocation waits for it and is judged on the new value.
 * - A change reported while a reload runs makes that same reload run again before it
 *   resolves: whoever awaits it sees every change reported before they awaited.
 * - `healthy()` is false while the feed cannot observe changes (PostgreSQL listener lost):
 *   callers fail closed.
 * - `eager` caches reload in the background as soon as the feed reports a change, and retry
 *   a failed reload after a cooldown (1 s doubling to 30 s), so a change is never lost to one
 *   failed read.
 */
import type { ChangeSource, KeyWatch } from "./changeFeed.js";

export interface FeedCacheOptions<T> {
  /** Reads the value; `current` is the value held now (the initial value before the first load). */
  load: (current: T) => Promise<T>;
  /** Also told of every change the feed reports, before the reload starts. */
  onChange?: () => void;
  /** Reload in the background on every change instead of on the next refresh(). */
  eager?: boolean;
  /** A background reload failed (it is retried after a cooldown). */
  onError?: (err: unknown) => void;
  /** Cooldown before the first retry of a failed background reload. Default 1000 ms. */
  retryMs?: number;
  /** How long start() waits for the feed to become healthy. Default 5000 ms. */
  healthyWithinMs?: number;
}

const RETRY_MAX_MS = 30_000;

export class FeedCache<T> {
  private current: T;
  private stale = true;
  private inflight: Promise<void> | null = null;
  private watch: KeyWatch | null = null;
  private retry: NodeJS.Timeout | null = null;
  private retryDelay = 0;
  private closed = false;

  constructor(
    private readonly source: ChangeSource,
    initial: T,
    private readonly opts: FeedCacheOptions<T>,
  ) {
    this.current = initial;
  }

  /** The value as last loaded. Call refresh() first on the request path. */
  get value(): T {
    return this.current;
  }

  /**
   * Subscribes (first, so nothing committed before the load is missed), loads, and waits
   * for the feed to be healthy: a feed still connecting would make every credential refused.
   */
  async start(): Promise<void> {
    this.watch = this.source.watchKeys(() => this.changed());
    await this.reload();
    const deadline = Date.now() + (this.opts.healthyWithinMs ?? 5_000);
    while (!this.watch.healthy() && !this.closed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const watch = this.watch;
    this.watch = null;
    await watch?.close();
  }

  /** False while changes cannot be observed: whatever the value allows must be refused. */
  healthy(): boolean {
    return this.watch?.healthy() ?? false;
  }

  /**
   * Makes sure the value reflects every change the feed reported. Synchronous (undefined)
   * in the steady state; a promise only while a reload is needed or running. Rejects if
   * the store fails (the value stays stale and the next call tries again).
   */
  refresh(): Promise<void> | undefined {
    this.watch?.check();
    if (this.stale || this.inflight !== null) return this.reload();
    return undefined;
  }

  /** Checks the feed now, past its throttle (timers, tests). */
  poll(): void {
    this.watch?.poll();
  }

  /** Treats the value as changed: reloaded by the next refresh(), or now when eager. */
  invalidate(): void {
    this.stale = true;
    if (this.opts.eager) this.reloadInBackground();
  }

  /** The single in-flight reload; loops while changes keep arriving during it. */
  reload(): Promise<void> {
    if (this.inflight !== null) return this.inflight;
    const run = this.loadWhileStale();
    const done = () => {
      if (this.inflight === run) this.inflight = null;
    };
    this.inflight = run;
    run.then(done, (err: unknown) => {
      done();
      if (this.opts.eager && !this.closed) {
        this.opts.onError?.(err);
        this.scheduleRetry();
      }
    });
    return run;
  }

  private async loadWhileStale(): Promise<void> {
    while (this.stale && !this.closed) {
      this.stale = false;
      try {
        this.current = await this.opts.load(this.current);
      } catch (err) {
        this.stale = true;
        throw err;
      }
    }
    this.retryDelay = 0;
  }

  private changed(): void {
    this.stale = true;
    this.opts.onChange?.();
    if (this.opts.eager) this.reloadInBackground();
  }

  private reloadInBackground(): void {
    if (this.closed || this.inflight !== null) return;
    this.reload().catch(() => {});
  }

  private scheduleRetry(): void {
    if (this.retry !== null) return;
    this.retryDelay = Math.min(Math.max(this.retryDelay * 2, this.opts.retryMs ?? 1_000), RETRY_MAX_MS);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.stale) this.reloadInBackground();
    }, this.retryDelay);
    this.retry.unref();
  }
}
