/**
 * Chooses the store from one spec string: a `postgres://` or `postgresql://` URL is
 * PostgreSQL, anything else is the path of a SQLite file. The returned store is migrated.
 */
import { isStoreOutage } from "../core/outage.js";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./types.js";

export function isPostgresSpec(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** The store as it may be printed: the SQLite file, or the URL without its password. */
export function storeDisplayName(spec: string): string {
  if (!isPostgresSpec(spec)) return spec;
  try {
    const url = new URL(spec);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "(unparseable PostgreSQL URL)";
  }
}

export interface OpenStoreOptions {
  /** A connection failed outside any query (PostgreSQL): reported, never thrown. */
  onConnectionError?: (err: Error) => void;
}

export async function openStore(spec: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const store = isPostgresSpec(spec)
    ? await openPostgresStore(
        spec,
        opts.onConnectionError ? { onConnectionError: opts.onConnectionError } : {},
      )
    : await openSqliteStore(spec);
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

export interface WaitForStoreOptions extends OpenStoreOptions {
  /** Called before each wait with the attempt number, the error and the delay until the next try. */
  onWaiting?: (attempt: number, err: unknown, delayMs: number) => void;
  /** Stops waiting (rejects with the last error) when aborted. */
  signal?: AbortSignal;
}

const WAIT_MIN_MS = 250;
const WAIT_MAX_MS = 2_000;

/**
 * openStore, retried with exponential backoff (250 ms doubling to 2 s) for as long as the
 * store is unreachable: a gateway started before its database waits for it instead of
 * exiting. Anything that is not an outage (bad credentials, a schema newer than this
 * build, a bad path) fails at once.
 */
export async function openStoreWhenReachable(spec: string, opts: WaitForStoreOptions = {}): Promise<Store> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openStore(spec, opts);
    } catch (err) {
      if (!isStoreOutage(err) || opts.signal?.aborted) throw err;
      const delay = Math.min(WAIT_MIN_MS * 2 ** (attempt - 1), WAIT_MAX_MS);
      opts.onWaiting?.(attempt, err, delay);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        opts.signal?.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      if (opts.signal?.aborted) throw err;
    }
  }
}
