/**
 * Chooses the store from one spec string: a `postgres://` or `postgresql://` URL is
 * PostgreSQL, anything else is the path of a SQLite file. The returned store is migrated.
 */
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./types.js";

export function isPostgresSpec(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export async function openStore(spec: string): Promise<Store> {
  const store = isPostgresSpec(spec) ? await openPostgresStore(spec) : await openSqliteStore(spec);
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
