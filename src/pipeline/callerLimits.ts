/**
 * Per-caller resource caps on the request path (RFC 6585 §4, 429 Too Many Requests with
 * `Retry-After`, RFC 9110 §10.2.3): how many calls one caller may have in flight on one
 * server (so one caller cannot take an upstream's whole connection pool), and how many
 * long-lived 2025-x GET streams one caller, and one session, may hold open.
 *
 * Counts live in this replica's memory (a cap holds per replica). A counter exists only
 * while something holds it, so the maps are bounded by what is open right now.
 */
import type { Config } from "../config/schema.js";
import { GatewayError, LIMIT_NAMES, type LimitName, tooManyRequests } from "../core/errors.js";

/** The cap a 429 names, for the metrics label (null for anything else). */
export function limitOf(err: unknown): LimitName | null {
  if (!(err instanceof GatewayError) || err.status !== 429) return null;
  const limit = (err.data as { limit?: unknown } | undefined)?.limit;
  return (LIMIT_NAMES as readonly unknown[]).includes(limit) ? (limit as LimitName) : null;
}

/** Counts holders per key, up to a cap; a key is forgotten when its last holder releases. */
export class ConcurrencyCap {
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(readonly cap: number) {}

  /** A release function, or null when `key` already holds `cap` slots. */
  tryAcquire(key: string): (() => void) | null {
    const n = this.held.get(key) ?? 0;
    if (n >= this.cap) return null;
    this.held.set(key, n + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.held.get(key) ?? 1) - 1;
      if (left <= 0) this.held.delete(key);
      else this.held.set(key, left);
    };
  }

  /** Slots held by every key together (for a gauge). */
  get size(): number {
    return this.total;
  }

  /** Keys holding at least one slot (bounded by what is open now). */
  get keys(): number {
    return this.held.size;
  }
}

export interface CallerLimitsConfig {
  callsInFlightPerCaller: number;
  streamsPerCaller: number;
  streamsPerSession: number;
  retryAfterSeconds: number;
}

/** The request path's caps, built once at startup from `limits`. */
export class CallerLimits {
  private readonly calls: ConcurrencyCap;
  private readonly callerStreams: ConcurrencyCap;
  private readonly sessionStreams: ConcurrencyCap;

  constructor(private readonly config: CallerLimitsConfig) {
    this.calls = new ConcurrencyCap(config.callsInFlightPerCaller);
    this.callerStreams = new ConcurrencyCap(config.streamsPerCaller);
    this.sessionStreams = new ConcurrencyCap(config.streamsPerSession);
  }

  /** A slot for one forwarded call of `principalId` on `server`, or the 429 to answer. */
  call(principalId: string, server: string): (() => void) | GatewayError {
    const release = this.calls.tryAcquire(`${server}\n${principalId}`);
    return (
      release ??
      tooManyRequests(
        "calls_in_flight",
        this.config.retryAfterSeconds,
        `caller already has ${this.calls.cap} calls in flight on ${server} (limits.callsInFlightPerCaller)`,
      )
    );
  }

  /** A slot for one GET stream of `principalId` (and of its session, when it names one). */
  stream(principalId: string, server: string, sessionId: string | null): (() => void) | GatewayError {
    const caller = this.callerStreams.tryAcquire(principalId);
    if (caller === null) {
      return tooManyRequests(
        "streams_per_caller",
        this.config.retryAfterSeconds,
        `caller already holds ${this.callerStreams.cap} open streams (limits.streamsPerCaller)`,
      );
    }
    if (sessionId === null) return caller;
    const session = this.sessionStreams.tryAcquire(`${server}\n${sessionId}`);
    if (session === null) {
      caller();
      return tooManyRequests(
        "streams_per_session",
        this.config.retryAfterSeconds,
        `session already has ${this.sessionStreams.cap} open streams (limits.streamsPerSession)`,
      );
    }
    return () => {
      session();
      caller();
    };
  }

  get callsInFlight(): number {
    return this.calls.size;
  }

  get openStreams(): number {
    return this.callerStreams.size;
  }
}

/** HTTP servers whose whole connection pool one caller could take with the configured cap. */
export function poolShareWarnings(config: Config): string[] {
  const cap = config.limits.callsInFlightPerCaller;
  return Object.entries(config.servers)
    .filter(([, server]) => server.transport === "http" && server.connections <= cap)
    .map(
      ([name, server]) =>
        `servers.${name}.connections (${server.transport === "http" ? server.connections : 0}) is not above limits.callsInFlightPerCaller (${cap}): one caller can take every connection to ${name}`,
    );
}
