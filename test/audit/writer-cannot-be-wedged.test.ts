/**
 * One tools/call whose arguments nested 100,000 arrays deep made the audit writer fail on
 * that record and retry it forever: every later call went unrecorded. Here the writer is
 * handed generated records (fast-check) — arguments and details nested past any limit, huge,
 * cyclic, BigInt, with throwing getters; text with NUL and unpaired surrogates; invalid
 * instants and latencies — group-committed and durable, on SQLite and PostgreSQL, and after
 * every input it must have drained: nothing pending, every durable caller answered
 * "committed", every record in the chain, and the chain verifies at the end.
 *
 * The budget is short by default; PORTCULLIS_FUZZ_RUNS=1000000 runs a long one by hand.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { pino } from "pino";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { AuditWriter } from "../../src/audit/writer.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const RUNS = Number(process.env.PORTCULLIS_FUZZ_RUNS ?? 100);
const log = pino({ level: "silent" });

function nestedArrays(depth: number): unknown {
  let v: unknown = "core";
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function nestedObjects(depth: number): unknown {
  let v: unknown = { password: "hunter2" };
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

function cyclic(): unknown {
  const o: Record<string, unknown> = { name: "loop" };
  o.self = { back: o };
  return o;
}

function throwing(): unknown {
  return {
    ok: 1,
    get boom(): unknown {
      throw new Error("getter throws");
    },
  };
}

/** Text a caller controls: any code unit, with the ones stores refuse made common. */
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 24 }),
  fc.string({ unit: "binary-ascii", maxLength: 24 }),
  fc
    .tuple(
      fc.string({ maxLength: 6 }),
      fc.constantFrom("\u0000", "\ud800", "\udfff", "\udbff\udfff", "\ufffe"),
    )
    .map(([a, b]) => a + b + a),
);

/** A value for `arguments` or inside `detail`. */
const value: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 4 }), weight: 4 },
  {
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withBoxedValues: true,
    }),
    weight: 2,
  },
  { arbitrary: fc.integer({ min: 60, max: 100_000 }).map(nestedArrays), weight: 1 },
  { arbitrary: fc.integer({ min: 8, max: 20_000 }).map(nestedObjects), weight: 1 },
  { arbitrary: fc.integer({ min: 200, max: 400_000 }).map((n) => ({ text: "A".repeat(n) })), weight: 1 },
  { arbitrary: fc.constant(null).map(cyclic), weight: 1 },
  { arbitrary: fc.constant(null).map(throwing), weight: 1 },
  { arbitrary: fc.bigInt().map((n) => ({ n })), weight: 1 },
  { arbitrary: text.map((t) => ({ t, note: `password: ${t}` })), weight: 2 },
);

const record = fc.record({
  at: fc.oneof(fc.date(), fc.constant(new Date(Number.NaN))),
  environment: text,
  principal: fc.option(text),
  method: fc.option(text),
  credentialId: fc.option(text),
  server: fc.option(text),
  rpcMethod: fc.option(text),
  tool: fc.option(text),
  decision: fc.constantFrom("allow" as const, "deny" as const, "review" as const),
  reason: text,
  latencyUs: fc.oneof(fc.double(), fc.integer(), fc.constant(Number.MAX_VALUE)),
  detail: fc.option(fc.dictionary(text, value, { maxKeys: 3 })),
  decisionId: fc.option(text),
  ruleIds: fc.option(fc.array(text, { maxLength: 3 })),
  policyVersion: fc.option(text),
  arguments: fc.option(value, { nil: undefined }),
  durable: fc.boolean(),
});

async function fuzzWriter(store: Store, runs: number): Promise<void> {
  const writer = await AuditWriter.open(
    store,
    log,
    {
      flushIntervalMs: 20,
      maxBatch: 1000,
      checkpointEvery: 500,
      checkpointIntervalSeconds: 3600,
      arguments: "redacted",
    },
    randomBytes(48),
  );
  let handedOver = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 6 }), async (records) => {
      const durable: Promise<void>[] = [];
      for (const { durable: isDurable, ...fields } of records) {
        const entry = fields as AuditRecord;
        if (isDurable) durable.push(writer.recordDurable(entry));
        else writer.record(entry);
      }
      handedOver += records.length;
      const answers = await Promise.allSettled(durable);
      await writer.flush();
      assert.deepEqual(
        answers.filter((a) => a.status === "rejected"),
        [],
        "every durable caller was told committed",
      );
      assert.equal(writer.pending, 0, "the writer drained");
      assert.equal(
        (await store.auditChainTail(writer.chain))?.chainSeq,
        handedOver,
        "every record is in the chain",
      );
    }),
    { numRuns: runs },
  );
  await writer.close();
  const report = await verifyAuditLog(store, { chain: writer.chain });
  assert.equal(report.ok, true, JSON.stringify(report.chains[0]?.problem));
  assert.equal(report.chains[0]?.records, handedOver);
}

const pgSkip = await postgresSkip();

describe("audit writer fuzz: no single record can wedge it", () => {
  it("drains after every generated record on SQLite, and the chain verifies", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-writer-fuzz-"));
    const store = await openStore(join(dir, "portcullis.db"));
    try {
      await fuzzWriter(store, RUNS);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("drains after every generated record on PostgreSQL (NUL and surrogates in text columns)", {
    skip: pgSkip,
  }, async () => {
    const database = await createTestDatabase();
    const store = await openStore(database.url);
    try {
      await fuzzWriter(store, Math.max(1, Math.round(RUNS / 2)));
    } finally {
      await store.close();
      await database.drop();
    }
  });
});
