/**
 * The AuditWriter's two paths: recordDurable() resolves only once its record is committed
 * (visible to another connection), group-committed records interleaved with durable ones keep
 * one unbroken chain, and a failed commit refuses the durable caller instead of pretending.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pino } from "pino";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { AuditWriter, type AuditWriterOptions } from "../../src/audit/writer.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { waitFor } from "../helpers/wait.js";

const log = pino({ level: "silent" });
const OPTIONS: AuditWriterOptions = {
  flushIntervalMs: 50,
  maxBatch: 1000,
  checkpointEvery: 100,
  checkpointIntervalSeconds: 3600,
  arguments: "redacted",
};

function entry(tag: string, tier: string): AuditRecord {
  return {
    at: new Date(),
    environment: "prod",
    principal: "user:alice",
    method: "api_key",
    credentialId: null,
    server: "files",
    rpcMethod: "tools/call",
    tool: tier === "write" ? "write_file" : "read_file",
    decision: "allow",
    reason: "allowed",
    latencyUs: 50,
    detail: null,
    arguments: { tag },
  };
}

async function tempStore(): Promise<{ file: string; store: Store; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-writer-"));
  const file = join(dir, "portcullis.db");
  const store = await openStore(file);
  return { file, store, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

describe("audit writer", () => {
  it("a durable record is committed before recordDurable resolves, interleaved with group commits", async () => {
    const { file, store, cleanup } = await tempStore();
    const reader = await openStore(file);
    try {
      const writer = await AuditWriter.open(store, log, OPTIONS, randomBytes(48));
      const durable: Promise<string>[] = [];
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) {
          const tag = `write-${i}`;
          durable.push(writer.recordDurable(entry(tag, "write")).then(() => tag));
        } else writer.record(entry(`read-${i}`, "read"));
      }
      // Each durable caller checks, from another connection, as soon as it is told "committed".
      const seen = await Promise.all(
        durable.map(async (p) => {
          const tag = await p;
          const hits = (await reader.searchAudit({ limit: 1000 })).filter(
            (r) => (r.arguments as { tag?: string } | null)?.tag === tag,
          );
          return hits.length;
        }),
      );
      assert.ok(
        seen.every((n) => n === 1),
        "every durable record was visible when its promise resolved",
      );
      await writer.close();
      const report = await verifyAuditLog(reader, { chain: writer.chain });
      assert.equal(report.ok, true, JSON.stringify(report.chains[0]?.problem));
      assert.equal(report.chains[0]?.records, 200, "one chain holds both paths, in order");
      const rows = await reader.readAuditChain(writer.chain, 0, 1000);
      assert.deepEqual(
        rows.map((r) => JSON.parse(r.arguments as string).tag),
        Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? `write-${i}` : `read-${i}`)),
        "records are chained in the order they were handed over",
      );
    } finally {
      await reader.close();
      await store.close();
      await cleanup();
    }
  });

  it("a group-committed record is written by the flush timer, with no close() and no full batch", {
    timeout: 10_000,
  }, async () => {
    const { store, cleanup } = await tempStore();
    try {
      const writer = await AuditWriter.open(store, log, OPTIONS, randomBytes(48));
      writer.record(entry("r", "read"));
      const [stored] = await waitFor("the flush timer's commit", async () => {
        const rows = await store.searchAudit({ limit: 1 });
        return rows.length > 0 && rows;
      });
      assert.deepEqual(stored?.arguments, { tag: "r" });
      await writer.close();
    } finally {
      await store.close();
      await cleanup();
    }
  });

  it("a failed commit rejects the durable caller, retries group records, and the chain stays intact", async () => {
    const { store, cleanup } = await tempStore();
    try {
      let failNext = false;
      const flaky = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === "appendAuditChain") {
            return (...args: Parameters<Store["appendAuditChain"]>) => {
              if (failNext) {
                failNext = false;
                return Promise.reject(new Error("disk full"));
              }
              return target.appendAuditChain(...args);
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const writer = await AuditWriter.open(flaky, log, OPTIONS, randomBytes(48));
      await writer.recordDurable(entry("w1", "write"));
      writer.record(entry("r1", "read"));
      failNext = true;
      await assert.rejects(writer.recordDurable(entry("w2", "write")), /disk full/);
      await writer.recordDurable(entry("w3", "write"));
      await writer.close();
      const tags = (await store.readAuditChain(writer.chain, 0, 100)).map(
        (r) => JSON.parse(r.arguments as string).tag,
      );
      assert.deepEqual(
        tags,
        ["w1", "r1", "w3"],
        "the refused call has no allow record; the read record was retried",
      );
      assert.equal((await verifyAuditLog(store, { chain: writer.chain })).ok, true);
    } finally {
      await store.close();
      await cleanup();
    }
  });

  it("a record the store refuses is stored as its hash: the records behind it are written and every durable caller is answered", async () => {
    const { store, cleanup } = await tempStore();
    try {
      // A store that refuses any transaction holding one particular record (as PostgreSQL
      // refuses a value it cannot store) while it answers everything else.
      const refusing = new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === "appendAuditChain") {
            return (...args: Parameters<Store["appendAuditChain"]>) =>
              args[0].some((r) => r.reason === "poison")
                ? Promise.reject(new Error("invalid byte sequence"))
                : target.appendAuditChain(...args);
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const writer = await AuditWriter.open(refusing, log, OPTIONS, randomBytes(48));
      for (let i = 0; i < 10; i++) writer.record(entry(`before-${i}`, "read"));
      writer.record({ ...entry("poisoned", "read"), reason: "poison" });
      for (let i = 0; i < 10; i++) writer.record(entry(`after-${i}`, "read"));
      // Handed over while the poisoned batch is in the queue: answered, never left waiting.
      const durable = await Promise.allSettled([writer.recordDurable(entry("durable-1", "write"))]);
      assert.equal(durable.length, 1);
      while (writer.pending > 0) await new Promise((r) => setTimeout(r, 20));
      // Positive control: once the queue drained, a durable write commits as usual.
      await writer.recordDurable(entry("durable-2", "write"));
      await writer.close();
      const rows = await store.readAuditChain(writer.chain, 0, 100);
      const tags = rows.map((r) => (r.arguments === null ? null : JSON.parse(r.arguments).tag));
      const committed = durable[0]?.status === "fulfilled" ? ["durable-1"] : [];
      assert.deepEqual(
        tags.filter((t) => t !== null && t !== "poisoned"),
        [
          ...Array.from({ length: 10 }, (_, i) => `before-${i}`),
          ...Array.from({ length: 10 }, (_, i) => `after-${i}`),
          ...committed,
          "durable-2",
        ],
        "every record but the refused one is stored as written, in order",
      );
      const refused = rows.filter((r) => r.reason.startsWith("audit record refused by the store"));
      assert.equal(refused.length, 1, "the refused record is in the chain, as its hash");
      const detail = JSON.parse(refused[0]?.detail as string);
      assert.match(detail.sha256, /^[0-9a-f]{64}$/);
      assert.equal(detail.error, "invalid byte sequence");
      assert.ok(!rows.some((r) => r.reason === "poison"));
      assert.equal((await verifyAuditLog(store, { chain: writer.chain })).ok, true);
    } finally {
      await store.close();
      await cleanup();
    }
  });
});
