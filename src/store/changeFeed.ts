/**
 * The store's change feed: how a running process hears that credentials, tool pins or
 * approvals were changed elsewhere (the CLI, another replica), so its caches reload and a
 * revocation is refused everywhere within 100 ms (docs: DESIGN "Storage and scale-out").
 *
 * One feed per store, so one per replica: a single detector — one PostgreSQL LISTEN
 * connection (./postgres.ts), or one `PRAGMA data_version` poller (./sqlite.ts) — fanned out
 * in-process to every subscriber (keyring, machine clients, tool pins, approvals; see
 * ./feedCache.ts). Every mutation bumps the `keys` revision and is announced on this feed;
 * subscribers that care about one kind of change only (tool pins) compare their own revision.
 *
 * The detector starts with the first subscriber and stops with the last. While it is down
 * the feed is unhealthy and callers fail closed; a detector that comes back reports a change,
 * so caches reload whatever they missed.
 */

/** One subscription to the change feed. */
export interface KeyWatch {
  /** Checks for changes made elsewhere now (SQLite: data_version; PostgreSQL pushes: no-op). */
  poll(): void;
  /**
   * What the request path calls: like poll(), but at most once per the feed's check interval
   * across the whole process (a property read otherwise).
   */
  check(): void;
  /** False when changes can no longer be observed; callers must refuse credentials. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** Whatever hands out subscriptions: the Store. */
export interface ChangeSource {
  /** Registers a callback fired on every change made anywhere (this process included). */
  watchKeys(onChange: () => void): KeyWatch;
}

/** The dialect part of the feed: notices commits made by other connections. */
export interface ChangeDetector {
  /** Synchronous check for changes made elsewhere (fires the detector's callback); may be a no-op. */
  poll(): void;
  /** This process committed a change through its own connection (which data_version does not count). */
  ownCommit(): void;
  /** False while changes cannot be observed. */
  healthy(): boolean;
  close(): Promise<void>;
}

export interface ChangeFeedOptions {
  /** Also poll the detector on a timer at this interval while anyone subscribes (SQLite). */
  backgroundPollMs?: number;
  /** check() polls at most this often. Default 20 ms (the request path's revocation delay bound). */
  checkIntervalMs?: number;
}

const DEFAULT_CHECK_INTERVAL_MS = 20;

export class ChangeFeed {
  private readonly subscribers = new Set<() => void>();
  private detector: ChangeDetector | null = null;
  private background: NodeJS.Timeout | null = null;
  /** True when check() may poll again. */
  private due = true;
  private readonly checkIntervalMs: number;
  private readonly rearm = () => {
    this.due = true;
  };

  /** `open` creates the detector; it calls `changed` for every change it notices. */
  constructor(
    private readonly open: (changed: () => void) => ChangeDetector,
    private readonly opts: ChangeFeedOptions = {},
  ) {
    this.checkIntervalMs = opts.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  }

  subscribe(onChange: () => void): KeyWatch {
    // Each subscription gets its own function, so the same callback may subscribe twice.
    const listener = () => onChange();
    this.start();
    this.subscribers.add(listener);
    let open = true;
    return {
      poll: () => {
        if (open) this.poll();
      },
      check: () => {
        if (open) this.check();
      },
      healthy: () => open && this.healthy(),
      close: async () => {
        if (!open) return;
        open = false;
        this.subscribers.delete(listener);
        if (this.subscribers.size === 0) await this.stop();
      },
    };
  }

  /** Checks the detector now. */
  poll(): void {
    this.detector?.poll();
  }

  /** poll(), at most once per check interval. */
  check(): void {
    if (!this.due) return;
    this.due = false;
    setTimeout(this.rearm, this.checkIntervalMs).unref();
    this.detector?.poll();
  }

  healthy(): boolean {
    return this.detector?.healthy() ?? false;
  }

  /** A change this process committed: subscribers hear it at once. */
  ownCommit(): void {
    if (this.detector === null) return;
    this.detector.ownCommit();
    this.fanOut();
  }

  async close(): Promise<void> {
    this.subscribers.clear();
    await this.stop();
  }

  private start(): void {
    if (this.detector !== null) return;
    this.detector = this.open(() => this.fanOut());
    const every = this.opts.backgroundPollMs;
    if (every !== undefined) {
      this.background = setInterval(() => {
        try {
          this.detector?.poll();
        } catch {
          // The store is closing or broken: the request path's own check() reports it.
        }
      }, every);
      this.background.unref();
    }
  }

  private async stop(): Promise<void> {
    if (this.background) clearInterval(this.background);
    this.background = null;
    const detector = this.detector;
    this.detector = null;
    await detector?.close();
  }

  private fanOut(): void {
    for (const listener of [...this.subscribers]) listener();
  }
}
