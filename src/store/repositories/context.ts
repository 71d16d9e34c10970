/**
 * What every repository of the SQL store shares: the dialect, the one Kysely instance over
 * ./../schema.ts, and the change feed's transaction (a mutation other replicas must hear of
 * runs through `mutate`: the keys revision is bumped and announced in the same transaction).
 */
import type { Kysely, Transaction } from "kysely";
import type { StoreDialect } from "../migrations/index.js";
import type { Schema } from "../schema.js";

export interface StoreContext {
  readonly kind: StoreDialect;
  readonly db: Kysely<Schema>;
  /** Runs `fn` in one transaction; when it returns true the change is announced on the feed. */
  mutate(fn: (trx: Transaction<Schema>) => Promise<boolean>): Promise<boolean>;
}

/** list…() without a limit returns at most this many records. */
export const DEFAULT_LIST_LIMIT = 100;

/** Throws unless `limit` is a non-negative safe integer. */
export function checkLimit(what: string, limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(`${what}: limit must be a non-negative integer, got ${limit}`);
  }
  return limit;
}
