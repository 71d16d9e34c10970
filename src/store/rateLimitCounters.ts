/**
 * Where rate-limit counters live (sign-in guessing, client registration: src/oauth/abuseLimits.ts).
 * With a PostgreSQL store, every replica counts in one table, `portcullis_rate_limits`
 * (migration 010), through rate-limiter-flexible's PostgreSQL backend on a small pool of its own;
 * N replicas then allow what one allows, not N times as much. With SQLite (one process owns the
 * file), the counters stay in memory. rate-limiter-flexible prefixes every key with its limiter's
 * `keyPrefix`, so all limiters share the one table.
 *
 * While PostgreSQL is unreachable a count fails with the database error: the endpoint that
 * asked answers with an error, never lets the attempt through uncounted (fail closed).
 */
import pg from "pg";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterPostgres } from "rate-limiter-flexible";
import { isPostgresSpec } from "./open.js";

/** The table of migration 010: rate-limiter-flexible's schema (key, points, expire). */
export const RATE_LIMIT_TABLE = "portcullis_rate_limits";

export interface CounterSpec {
  /** Names the counter; part of every stored key. */
  keyPrefix: string;
  points: number;
  /** Seconds a count lives after its first point. */
  duration: number;
}

export interface RateLimitCounters {
  /** True when every replica on this store sees the same counts. */
  readonly shared: boolean;
  counter(spec: CounterSpec): RateLimiterAbstract;
  close(): Promise<void>;
}

/** Counters in this process only: tests, and the SQLite store. */
export function memoryCounters(): RateLimitCounters {
  return {
    shared: false,
    counter: (spec) => new RateLimiterMemory(spec),
    close: async () => {},
  };
}

/**
 * Counters for the store `spec` (the `store` setting): shared in PostgreSQL when the store is
 * PostgreSQL (the table exists once the store is migrated), in memory otherwise.
 */
export function rateLimitCounters(spec: string): RateLimitCounters {
  if (!isPostgresSpec(spec)) return memoryCounters();
  const pool = new pg.Pool({ connectionString: spec, max: 2, application_name: "portcullis-rate-limits" });
  // A pooled connection that dies between queries is replaced; each count reports its own error.
  pool.on("error", () => {});
  return {
    shared: true,
    counter: (c) =>
      new RateLimiterPostgres({
        ...c,
        storeClient: pool,
        storeType: "pool",
        tableName: RATE_LIMIT_TABLE,
        tableCreated: true,
      }),
    close: () => pool.end(),
  };
}
