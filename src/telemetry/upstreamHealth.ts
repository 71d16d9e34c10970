/**
 * Per-upstream health: whether each configured server answered its last real call, its last
 * start check or its last probe (`up`), failed it (`down`, with a one-line summary and, for a
 * stdio server, the last lines its process wrote to stderr), or has not been tried (`unknown`).
 *
 * The gateway keeps one {@link UpstreamHealth} (one entry per configured server, nothing
 * else: bounded by the config). It is shown three ways (docs/operations.md "Upstream health"):
 * `GET /status` (state per server only: no error text, no stderr, since the endpoint is
 * unauthenticated), and, for operators, the console's Servers page and `portcullis servers
 * status`, which run in other processes and read the report each replica publishes into the
 * store's settings (one row, rewritten at most once a second and only when something changed,
 * bounded in replicas and bytes: see {@link publishReport}).
 *
 * Stderr lines are masked (the injected `mask`, the audit log's secret redaction) before they
 * are kept, logged or published: a token a server prints must not reach a log or the store.
 */
import type { Logger } from "pino";
import type { SettingsRepository } from "../store/types.js";

export type HealthState = "up" | "down" | "unknown";

export interface ServerHealth {
  state: HealthState;
  /** When the server entered this state (ISO 8601); null while unknown since start. */
  since: string | null;
  /** One line: why the last failure happened (no stack, no secrets the gateway chose). */
  lastError: string | null;
  /** When the last failure happened (ISO 8601). */
  lastErrorAt: string | null;
  /** A stdio server's last stderr lines before it last exited or failed to start, masked. */
  stderr: readonly string[];
}

/** Masks secrets in each line (same length array); the audit log's redaction in the gateway. */
export type LineMask = (lines: readonly string[]) => Promise<string[]>;

/** Bounds of what is kept, logged and published per server. */
export const HEALTH_LIMITS = {
  stderrLines: 20,
  stderrBytes: 4096,
  lineChars: 240,
  // Both under the audit redaction's maxStringLength (256), which hashes longer strings.
  errorChars: 240,
  /** Replicas kept in the published report (the most recently reporting ones). */
  replicas: 16,
} as const;

/** The settings key of the published report (docs/operations.md). */
export const HEALTH_SETTING = "upstream_health";

const PUBLISH_DELAY_MS = 1000;

function clip(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

export class UpstreamHealth {
  private readonly servers = new Map<string, ServerHealth>();
  /** Servers that answered or failed since the last {@link idleSince} (the others are probed). */
  private readonly seen = new Set<string>();
  private publisher: { store: SettingsRepository; replica: string } | null = null;
  private publishTimer: NodeJS.Timeout | null = null;
  private publishing: Promise<void> = Promise.resolve();
  private dirty = false;
  private stopped = false;

  constructor(
    names: Iterable<string>,
    private readonly log: Logger,
    /** Masks secrets in lines a server wrote (also for its debug-level stderr log). */
    readonly mask: LineMask,
  ) {
    for (const name of names)
      this.servers.set(name, {
        state: "unknown",
        since: null,
        lastError: null,
        lastErrorAt: null,
        stderr: [],
      });
  }

  get(server: string): ServerHealth | undefined {
    return this.servers.get(server);
  }

  snapshot(): Record<string, ServerHealth> {
    return Object.fromEntries(this.servers);
  }

  /** The servers that neither answered nor failed since the last call; starts a new period. */
  idleSince(): Set<string> {
    const idle = new Set([...this.servers.keys()].filter((s) => !this.seen.has(s)));
    this.seen.clear();
    return idle;
  }

  /** The server answered (a call, a start check or a probe). Cheap when already up. */
  up(server: string): void {
    const h = this.servers.get(server);
    if (h === undefined) return;
    this.seen.add(server);
    if (h.state === "up") return;
    if (h.state === "down") this.log.info({ server }, "upstream is up again");
    this.servers.set(server, { ...h, state: "up", since: new Date().toISOString() });
    this.changed();
  }

  /**
   * The server failed. Without `stderr` (a failure the gateway observed: a refused connection,
   * a timeout, an HTTP status) the state changes at once and is logged at warn when something
   * is new. With `stderr` (a stdio process that exited or could not start), the process's own
   * words (its stderr lines, and the error, which may quote what it answered) are masked first,
   * then kept, published and logged at error: nothing unmasked is ever stored or shown.
   */
  async down(server: string, error: string, stderr?: readonly string[]): Promise<void> {
    const h = this.servers.get(server);
    if (h === undefined) return;
    this.seen.add(server);
    if (stderr === undefined) {
      const lastError = clip(error, HEALTH_LIMITS.errorChars);
      this.markDown(server, h, lastError, h.stderr);
      if (h.state !== "down" || h.lastError !== lastError)
        this.log.warn({ server, error: lastError }, `upstream ${server} is down: ${lastError}`);
      return;
    }
    const [lastError = "", ...lines] = await this.masked([error, ...stderr]);
    const current = this.servers.get(server) as ServerHealth;
    // Started again while the lines were masked: keep the failure for the record, not the state.
    if (current !== h && current.state === "up")
      this.servers.set(server, {
        ...current,
        lastError,
        lastErrorAt: new Date().toISOString(),
        stderr: lines,
      });
    else this.markDown(server, current, lastError, lines);
    this.changed();
    // A process that exited or could not start: its own words are the useful part.
    this.log.error(
      { server, error: lastError, stderr: lines },
      lines.length > 0
        ? `stdio upstream ${server} failed: ${lastError}; last stderr lines:\n${lines.join("\n")}`
        : `stdio upstream ${server} failed: ${lastError} (it wrote nothing to stderr)`,
    );
  }

  private markDown(server: string, h: ServerHealth, lastError: string, stderr: readonly string[]): void {
    const now = new Date().toISOString();
    this.servers.set(server, {
      state: "down",
      since: h.state === "down" ? h.since : now,
      lastError,
      lastErrorAt: now,
      stderr,
    });
    this.changed();
  }

  /** `[error, ...lines]` clipped and masked; on a masking failure, placeholders only. */
  private async masked(texts: readonly string[]): Promise<string[]> {
    const [error = "", ...lines] = texts;
    const kept = [
      clip(error, HEALTH_LIMITS.errorChars),
      ...lines.map((l) => clip(l, HEALTH_LIMITS.lineChars)),
    ];
    try {
      return await this.mask(kept);
    } catch (err) {
      // Never show what could not be checked for secrets.
      this.log.warn({ err }, "could not mask upstream stderr; lines withheld");
      return [
        "(error withheld: secret masking failed)",
        `(${lines.length} lines withheld: secret masking failed)`,
      ];
    }
  }

  /** Publishes the report into the store from now on (and at once). `replica` names this gateway. */
  publishTo(store: SettingsRepository, replica: string): void {
    this.publisher = { store, replica };
    this.changed();
  }

  /** Publishes a last report marking this replica stopped, and stops publishing. */
  async close(): Promise<void> {
    if (this.publishTimer !== null) clearTimeout(this.publishTimer);
    this.publishTimer = null;
    this.stopped = true;
    await this.publishing;
    if (this.publisher !== null) await this.publishNow(true);
    this.publisher = null;
  }

  private changed(): void {
    this.dirty = true;
    if (this.publisher === null || this.publishTimer !== null || this.stopped) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = null;
      this.publishing = this.publishing.then(() => this.publishNow(false));
    }, PUBLISH_DELAY_MS);
    this.publishTimer.unref();
  }

  private async publishNow(stopped: boolean): Promise<void> {
    const p = this.publisher;
    if (p === null || (!this.dirty && !stopped)) return;
    this.dirty = false;
    try {
      await publishReport(p.store, p.replica, {
        at: new Date().toISOString(),
        stopped,
        servers: this.snapshot(),
      });
    } catch (err) {
      this.dirty = true;
      this.log.warn({ err }, "could not publish upstream health to the store");
    }
  }
}

/** What one replica last published. */
export interface ReplicaReport {
  at: string;
  /** The replica stopped (cleanly) after this report. */
  stopped: boolean;
  servers: Record<string, ServerHealth>;
}

interface HealthBoard {
  v: 1;
  replicas: Record<string, ReplicaReport>;
}

/** Every replica's last report, newest first; empty when none was published. */
export async function readReports(
  store: SettingsRepository,
): Promise<Array<{ replica: string } & ReplicaReport>> {
  const board = parseBoard(await store.getSetting(HEALTH_SETTING));
  return Object.entries(board.replicas)
    .map(([replica, r]) => ({ replica, ...r }))
    .sort((a, b) => b.at.localeCompare(a.at));
}

/**
 * Rewrites this replica's entry of the one settings row (read, merge, write: a report another
 * replica writes in the same instant may be lost until its next change). Bounded: the
 * {@link HEALTH_LIMITS.replicas} most recent replicas are kept, each with one entry per
 * configured server, each entry clipped by {@link HEALTH_LIMITS}.
 */
export async function publishReport(
  store: SettingsRepository,
  replica: string,
  report: ReplicaReport,
): Promise<void> {
  const board = parseBoard(await store.getSetting(HEALTH_SETTING));
  board.replicas[replica] = report;
  const kept = Object.entries(board.replicas)
    .sort((a, b) => b[1].at.localeCompare(a[1].at))
    .slice(0, HEALTH_LIMITS.replicas);
  await store.setSetting(HEALTH_SETTING, JSON.stringify({ v: 1, replicas: Object.fromEntries(kept) }));
}

function parseBoard(text: string | undefined): HealthBoard {
  if (text === undefined) return { v: 1, replicas: {} };
  try {
    const parsed = JSON.parse(text) as Partial<HealthBoard>;
    if (parsed.v === 1 && typeof parsed.replicas === "object" && parsed.replicas !== null)
      return { v: 1, replicas: parsed.replicas };
  } catch {
    // an unreadable report is replaced by the next one
  }
  return { v: 1, replicas: {} };
}

/**
 * The last `lines` lines a process wrote, at most `bytes` bytes in all, each clipped: what a
 * crash log shows. Constant memory whatever the process writes.
 */
export class OutputTail {
  private lines: string[] = [];
  private bytes = 0;

  constructor(
    private readonly maxLines: number = HEALTH_LIMITS.stderrLines,
    private readonly maxBytes: number = HEALTH_LIMITS.stderrBytes,
    private readonly lineChars: number = HEALTH_LIMITS.lineChars,
  ) {}

  push(line: string): void {
    const kept = line.length > this.lineChars ? `${line.slice(0, this.lineChars - 1)}…` : line;
    this.lines.push(kept);
    this.bytes += Buffer.byteLength(kept);
    while (this.lines.length > this.maxLines || (this.bytes > this.maxBytes && this.lines.length > 1)) {
      this.bytes -= Buffer.byteLength(this.lines.shift() as string);
    }
  }

  get(): string[] {
    return [...this.lines];
  }
}
