/**
 * A store outage of any length cannot grow the audit backlog without bound: once
 * `maxPendingRecords` wait, the writer stops accepting (the listener then refuses 503 before any
 * work), and when the store answers again the backlog drains and one record says how many
 * requests were refused without a record of their own. (Issue 10: no unbounded state on the
 * audit path.) The end-to-end outage, with a real PostgreSQL stopped, is test/e2e/fault-store.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { pino } from "pino";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { AuditWriter } from "../../src/audit/writer.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { waitFor } from "../helpers/wait.js";

const record = (n: number): AuditRecord => ({
  at: new Date(),
  environment: "dev",
  principal: "user:alice",
  method: "api_key",
  credentialId: null,
  server: "demo",
  rpcMethod: "tools/call",
  tool: "read_note",
  decision: "allow",
  reason: "allowed",
  latencyUs: 10,
  detail: null,
  arguments: { n },
});

it("an audit backlog cannot grow without bound while the store is down, and the refusals are counted once it returns", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-backlog-"));
  const store = await openStore(join(dir, "portcullis.db"));
  let down = false;
  const outage = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "appendAuditChain" && down)
        return () => Promise.reject(Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" }));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as Store;
  const writer = await AuditWriter.open(
    outage,
    pino({ level: "silent" }),
    {
      flushIntervalMs: 5,
      maxBatch: 10,
      maxPendingRecords: 20,
      checkpointEvery: 1000,
      checkpointIntervalSeconds: 3600,
      arguments: "redacted",
    },
    randomBytes(48),
  );
  try {
    writer.record(record(0));
    await writer.flush();
    assert.equal(writer.accepting(), true, "control: a healthy store accepts");

    down = true;
    let accepted = 0;
    let refused = 0;
    for (let n = 1; n <= 100; n++) {
      if (writer.accepting()) {
        writer.record(record(n));
        accepted++;
      } else {
        writer.noteUnrecorded();
        refused++;
      }
    }
    assert.equal(accepted, 20, "the backlog stops at maxPendingRecords");
    assert.equal(refused, 80);

    down = false;
    const rows = await waitFor("the backlog to drain with its overflow record", async () => {
      const chain = await store.readAuditChain(writer.chain, 0, 1000);
      return chain.length === 22 ? chain : undefined;
    });
    const kept = rows.filter((r) => r.arguments !== null).map((r) => JSON.parse(r.arguments as string).n);
    assert.deepEqual(
      kept,
      Array.from({ length: 21 }, (_, i) => i),
      "no accepted record was lost",
    );
    const overflow = rows.at(-1);
    assert.match(overflow?.reason ?? "", /80 requests refused/);
    assert.equal(writer.accepting(), true);
    await writer.close();
    assert.equal((await verifyAuditLog(store, { chain: writer.chain })).ok, true);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
