/**
 * Issue 10, item 12, at its root: a PostgreSQL restart terminates every session (SQLSTATE
 * 57P01). pg-pool removes its own 'error' listener from a connection while it is checked out,
 * so a connection terminated between two queries of a transaction emitted an 'error' event
 * nobody listened to, and Node ended the process: every busy replica died with its database.
 * Now the transaction fails (as an outage the gateway answers 503), the process lives on, the
 * failure is reported for the metrics, and the pool serves the next query on a new connection.
 *
 * Only this suite's throwaway database's sessions are terminated; the shared server runs on.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { isStoreOutage } from "../../src/core/outage.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

describe("a PostgreSQL connection lost mid-transaction", { skip: await postgresSkip() }, () => {
  let db: TestDatabase;
  let store: Store;
  const reported: Error[] = [];

  before(async () => {
    db = await createTestDatabase();
    store = await openStore(db.url, { onConnectionError: (err) => reported.push(err) });
  });
  after(async () => {
    await store?.close();
    await db?.drop();
  });

  it("a session terminated between two queries of a transaction does not crash the process", async () => {
    const failed = await store
      .mutateCredentials(async (trx) => {
        await sql`SELECT 1`.execute(trx);
        // Idle in the transaction, checked out of the pool: the server ends the session now.
        await db.admin(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'portcullis'`,
        );
        await new Promise((r) => setTimeout(r, 200)); // the 'error' event arrives meanwhile
        await sql`SELECT 1`.execute(trx);
        return false;
      })
      .then(
        () => null,
        (err: unknown) => err,
      );
    assert.ok(failed instanceof Error, "the transaction fails");
    assert.ok(isStoreOutage(failed), `a lost connection is an outage (answered 503): ${String(failed)}`);
    assert.ok(
      reported.length > 0,
      "the connection error is reported (portcullis_store_connection_errors_total)",
    );
    // Positive control: the same store serves the next query on a fresh connection.
    assert.equal(typeof (await store.keysRevision()), "number");
  });
});
