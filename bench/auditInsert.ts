/**
 * The audit insert hot path (issue 11): 10,000 chained records committed through
 * `Store.appendAuditChain` (what the AuditWriter calls once per group commit), against the
 * previous implementation of that call (a Kysely transaction building one multi-row INSERT
 * per batch) on the same database, in one run. Prints wall time and process CPU per record
 * and the ratio, for several batch sizes. PostgreSQL too when PORTCULLIS_BENCH_PG_URL names
 * a database (it must be migrated or empty; the bench writes audit rows into it).
 *
 * Run: npm run build --silent && node dist/bench/auditInsert.js
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../src/store/open.js";
import { chainedAuditToRow } from "../src/store/rows.js";
import type { ChainedAuditRecord, Store } from "../src/store/types.js";

const RECORDS = 10_000;
const BATCHES = [1, 10, 100];

function records(chain: string, n: number): ChainedAuditRecord[] {
  const out: ChainedAuditRecord[] = [];
  for (let i = 1; i <= n; i++) {
    out.push({
      at: new Date(1_700_000_000_000 + i),
      environment: "dev",
      principal: "key:abc123",
      method: "api_key",
      credentialId: "abc123",
      server: "demo",
      rpcMethod: "tools/call",
      tool: "write_note",
      decision: "allow",
      reason: "policy allowed",
      latencyUs: 123,
      detail: { keyEnvironment: "dev" },
      decisionId: `dec_${i}`,
      ruleIds: ["default"],
      policyVersion: "v1",
      arguments: '{"text":"hello"}',
      chain,
      chainSeq: i,
      prevHash: "0".repeat(64),
      hash: i.toString(16).padStart(64, "0"),
    });
  }
  return out;
}

/** The previous appendAuditChain (no registration, no checkpoints): Kysely built and prepared per batch. */
async function kyselyAppend(store: Store, batch: ChainedAuditRecord[]): Promise<void> {
  const rows = batch.map(chainedAuditToRow);
  await store
    .oauthDatabase()
    .transaction()
    .execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 500) {
        await trx
          .insertInto("audit_log")
          .values(rows.slice(i, i + 500))
          .execute();
      }
    });
}

interface Cost {
  wallUs: number;
  cpuUs: number;
}

async function measure(
  write: (batch: ChainedAuditRecord[]) => Promise<void>,
  all: ChainedAuditRecord[],
  size: number,
): Promise<Cost> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < all.length; i += size) await write(all.slice(i, i + size));
  const wall = Number(process.hrtime.bigint() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: wall / all.length, cpuUs: (cpu.user + cpu.system) / all.length };
}

async function bench(label: string, store: Store): Promise<void> {
  let round = 0;
  for (const size of BATCHES) {
    // Warm up both paths, then alternate so drift on a busy machine hits both alike.
    await kyselyAppend(store, records(`warm-k-${label}-${size}`, 200));
    await store.appendAuditChain(records(`warm-s-${label}-${size}`, 200), []);
    const before = await measure((b) => kyselyAppend(store, b), records(`k${round}`, RECORDS), size);
    const after = await measure((b) => store.appendAuditChain(b, []), records(`s${round}`, RECORDS), size);
    round++;
    const f = (n: number) => n.toFixed(1).padStart(7);
    console.log(
      `${label} batch ${String(size).padStart(3)}: Kysely ${f(before.wallUs)} µs wall ${f(before.cpuUs)} µs CPU` +
        ` | store ${f(after.wallUs)} µs wall ${f(after.cpuUs)} µs CPU per record` +
        ` | CPU ratio ${(after.cpuUs / before.cpuUs).toFixed(2)}`,
    );
  }
}

const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-audit-"));
try {
  const sqlite = await openStore(join(dir, "portcullis.db"));
  try {
    await bench("sqlite", sqlite);
  } finally {
    await sqlite.close();
  }
  const pgUrl = process.env.PORTCULLIS_BENCH_PG_URL;
  if (pgUrl !== undefined) {
    const pg = await openStore(pgUrl);
    try {
      await bench("postgres", pg);
    } finally {
      await pg.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
