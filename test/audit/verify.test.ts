/**
 * Tamper evidence of the audit trail, on SQLite and PostgreSQL: records written through the
 * AuditWriter (hash chain + signed checkpoints), then tampered with directly in the database
 * the way an intruder with write access would, and `verifyAuditLog` must name the break.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { pino } from "pino";
import { auditKeyId, loadCheckpointSigner } from "../../src/audit/checkpoints.js";
import { parseLoggedCheckpoints } from "../../src/audit/loggedCheckpoints.js";
import { purgeExpiredAudit } from "../../src/audit/retention.js";
import { pinnedTrust, serverSecretTrust } from "../../src/audit/trust.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { AuditWriter, type AuditWriterOptions } from "../../src/audit/writer.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import {
  deleteHeadAndMoveAnchor,
  deleteWholeChain,
  insertUnchainedRecord,
  rewriteAndResign,
} from "../helpers/auditTamper.js";
import { createTestDatabase, postgresSkip } from "../helpers/postgres.js";

const log = pino({ level: "silent" });
const secret = randomBytes(48);
const OPTIONS: AuditWriterOptions = {
  flushIntervalMs: 5,
  maxBatch: 1000,
  checkpointEvery: 10,
  checkpointIntervalSeconds: 3600,
  arguments: "redacted",
};

interface Backend {
  open(): Promise<Store>;
  /** Runs one SQL statement directly on the database, bypassing the store. */
  sql(statement: string): Promise<void>;
  cleanup(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-audit-"));
  const file = join(dir, "portcullis.db");
  return {
    open: () => openStore(file),
    async sql(statement) {
      const db = new BetterSqlite3(file);
      try {
        db.exec(statement);
      } finally {
        db.close();
      }
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function postgresBackend(): Promise<Backend> {
  const db = await createTestDatabase();
  return { open: () => openStore(db.url), sql: db.admin, cleanup: db.drop };
}

function entry(i: number): AuditRecord {
  return {
    at: new Date(),
    environment: "prod",
    principal: `user:${i % 3}`,
    method: "api_key",
    credentialId: "AAAAAAAAAAAA",
    server: "files",
    rpcMethod: "tools/call",
    tool: i % 2 === 0 ? "write_file" : "read_file",
    decision: i % 7 === 0 ? "deny" : "allow",
    reason: `reason ${i}`,
    latencyUs: 40 + i,
    detail: i % 2 === 0 ? { i, nested: { list: [1, "two", null], x: 1.5 } } : null,
    decisionId: `d-${i}`,
    ruleIds: ["r1"],
    policyVersion: "p-1",
    arguments: { path: `/tmp/${i}`, content: "x".repeat(i * 20) },
  };
}

/**
 * A fresh chain of 25 records: one flush per record, so checkpoints land at 10 and 20 (and
 * at 25 when `close` is set). Returns the writer's chain id.
 */
async function writeChain(store: Store, close = true): Promise<{ chain: string; writer: AuditWriter }> {
  const writer = await AuditWriter.open(store, log, OPTIONS, secret);
  for (let i = 1; i <= 25; i++) await writer.recordDurable(entry(i));
  if (close) await writer.close();
  return { chain: writer.chain, writer };
}

function suite(kind: "sqlite" | "postgres", makeBackend: () => Promise<Backend>): void {
  let backend: Backend;
  let store: Store;
  before(async () => {
    backend = await makeBackend();
    store = await backend.open();
  });
  after(async () => {
    await store?.close();
    await backend?.cleanup();
  });

  const chainOf = async (chain: string) => {
    const report = await verifyAuditLog(store, { chain });
    assert.equal(report.chains.length, 1);
    return report.chains[0] as NonNullable<(typeof report.chains)[0]>;
  };

  it("an untouched chain verifies, with its checkpoints", async () => {
    const { chain } = await writeChain(store);
    const c = await chainOf(chain);
    assert.equal(c.ok, true, JSON.stringify(c.problem));
    assert.equal(c.records, 25);
    assert.deepEqual([c.firstSeq, c.lastSeq, c.checkpoints, c.uncheckpointed], [1, 25, 3, 0]);
    assert.equal((await verifyAuditLog(store)).ok, true);
  });

  it("audit verify detects an edited record", async () => {
    const { chain } = await writeChain(store);
    await backend.sql(
      `UPDATE audit_log SET decision = 'allow', reason = 'nothing to see' WHERE chain = '${chain}' AND chain_seq = 7`,
    );
    const c = await chainOf(chain);
    assert.equal(c.ok, false);
    assert.deepEqual([c.problem?.kind, c.problem?.seq], ["edited", 7]);
    assert.equal((await verifyAuditLog(store)).ok, false, "the whole log is reported broken");
  });

  it("audit verify detects an edited record whose chain was recomputed (the checkpoint disagrees)", async () => {
    const { chain } = await writeChain(store);
    // The intruder edits record 3 and recomputes every hash after it: only the signed checkpoint can tell.
    const rows = await store.readAuditChain(chain, 0, 100);
    const { auditRecordHash } = await import("../../src/audit/chain.js");
    let prev = (rows[1] as (typeof rows)[0]).hash;
    for (const row of rows.slice(2)) {
      const edited = row.chain_seq === 3 ? { ...row, reason: "forged" } : row;
      const hash = auditRecordHash(prev, edited);
      await backend.sql(
        `UPDATE audit_log SET reason = '${edited.reason}', prev_hash = '${prev}', hash = '${hash}' WHERE chain = '${chain}' AND chain_seq = ${row.chain_seq}`,
      );
      prev = hash;
    }
    const c = await chainOf(chain);
    assert.deepEqual([c.ok, c.problem?.kind, c.problem?.seq], [false, "checkpoint_mismatch", 10]);
  });

  it("audit verify detects a deleted record", async () => {
    const { chain } = await writeChain(store);
    await backend.sql(`DELETE FROM audit_log WHERE chain = '${chain}' AND chain_seq = 12`);
    const c = await chainOf(chain);
    assert.deepEqual([c.ok, c.problem?.kind, c.problem?.seq], [false, "deleted", 12]);
    assert.match(c.problem?.detail ?? "", /record 12 is missing/);
  });

  it("audit verify detects a truncated tail", async () => {
    const { chain } = await writeChain(store);
    await backend.sql(`DELETE FROM audit_log WHERE chain = '${chain}' AND chain_seq > 21`);
    const c = await chainOf(chain);
    assert.deepEqual([c.ok, c.problem?.kind, c.problem?.seq], [false, "truncated", 22]);
    assert.match(c.problem?.detail ?? "", /records 22 to 25 are missing/);
  });

  it("audit verify detects a forged checkpoint", async () => {
    const { chain } = await writeChain(store);
    // Cut the tail, then move the last checkpoints onto the new tail to hide it: no key, no valid signature.
    const [r15] = await store.readAuditChain(chain, 14, 1);
    await backend.sql(`DELETE FROM audit_log WHERE chain = '${chain}' AND chain_seq > 15`);
    await backend.sql(`DELETE FROM audit_checkpoints WHERE chain = '${chain}' AND chain_seq > 20`);
    await backend.sql(
      `UPDATE audit_checkpoints SET chain_seq = 15, count = 15, hash = '${r15?.hash}' WHERE chain = '${chain}' AND chain_seq = 20`,
    );
    const c = await chainOf(chain);
    assert.deepEqual([c.ok, c.problem?.kind, c.problem?.seq], [false, "forged_checkpoint", 15]);
  });

  it("verify passes after retention purged old records", async () => {
    const { chain, writer } = await writeChain(store, false);
    // Two days later, with one day of retention: everything up to the last checkpoint (20) goes.
    const signer = await loadCheckpointSigner(store, secret);
    const result = await purgeExpiredAudit(store, 1, signer, new Date(Date.now() + 2 * 86_400_000));
    assert.ok(result.records >= 20);
    let c = await chainOf(chain);
    assert.equal(c.ok, true, JSON.stringify(c.problem));
    assert.deepEqual([c.anchorSeq, c.firstSeq, c.lastSeq, c.records], [20, 21, 25, 5]);
    await writer.recordDurable(entry(26));
    await writer.close();
    c = await chainOf(chain);
    assert.deepEqual([c.ok, c.lastSeq, c.uncheckpointed], [true, 26, 0]);

    // Deleting the kept records up to the anchor's successor is still a deletion.
    await backend.sql(`DELETE FROM audit_log WHERE chain = '${chain}' AND chain_seq = 21`);
    c = await chainOf(chain);
    assert.deepEqual([c.ok, c.problem?.kind, c.problem?.seq], [false, "deleted", 21]);
  });

  // The four store rewrites of issue 10 item 2, each against keys pinned outside the store,
  // each next to the untouched control that passes. A fresh store per case: the registry
  // and the unchained records are facts of the whole store.
  const fresh = async <T>(fn: (b: Backend, s: Store) => Promise<T>): Promise<T> => {
    const b = await makeBackend();
    const s = await b.open();
    try {
      return await fn(b, s);
    } finally {
      await s.close();
      await b.cleanup();
    }
  };
  /** The key as the operator pinned it at first start (its public half, kept outside the store). */
  const pinned = async (s: Store) =>
    pinnedTrust(await s.listAuditSigningKeys(), {
      publicKeys: [(await loadCheckpointSigner(s, secret)).publicKey],
      fingerprints: [],
    });
  /** A long-running writer with one record, three one-record chains (as CLI commands write), then one more checkpoint of the first. */
  const gatewayAndCommands = async (s: Store) => {
    const gateway = await AuditWriter.open(s, log, OPTIONS, secret);
    await gateway.recordDurable(entry(1));
    const commands: string[] = [];
    for (let i = 0; i < 3; i++) {
      const cli = await AuditWriter.open(s, log, OPTIONS, secret);
      await cli.recordDurable(entry(100 + i));
      await cli.close();
      commands.push(cli.chain);
    }
    await gateway.recordDurable(entry(2));
    await gateway.close();
    return { gateway: gateway.chain, commands };
  };
  const kinds = (r: Awaited<ReturnType<typeof verifyAuditLog>>) => [
    ...r.problems.map((p) => p.kind),
    ...r.chains.filter((c) => !c.ok).map((c) => c.problem?.kind),
  ];

  it("rejects-deleted-chain: a whole chain deleted from the middle, the end, or emptied is reported", async () => {
    for (const victim of [0, 2] as const) {
      await fresh(async (b, s) => {
        const { commands } = await gatewayAndCommands(s);
        const before = await verifyAuditLog(s, { trust: await pinned(s) });
        assert.equal(before.ok, true, JSON.stringify(before));
        assert.equal(before.chains.length, 4);
        await deleteWholeChain(b.sql, commands[victim] as string);
        const after = await verifyAuditLog(s, { trust: await pinned(s) });
        assert.equal(after.ok, false, `deleting command chain ${victim} went unnoticed`);
        assert.ok(kinds(after).includes("deleted_chain"), JSON.stringify(after.problems));
        assert.ok(!after.chains.some((c) => c.chain === commands[victim]), "the chain is really gone");
      });
    }
    // Records and checkpoints deleted, the registration left behind: an empty registered chain.
    await fresh(async (b, s) => {
      const { commands } = await gatewayAndCommands(s);
      const chain = commands[1] as string;
      await b.sql(`DELETE FROM audit_log WHERE chain = '${chain}'`);
      await b.sql(`DELETE FROM audit_checkpoints WHERE chain = '${chain}'`);
      const report = await verifyAuditLog(s, { trust: await pinned(s) });
      const c = report.chains.find((x) => x.chain === chain);
      assert.deepEqual([report.ok, c?.problem?.kind], [false, "deleted"]);
    });
  });

  it("rejects-rolled-back-store: the checkpoints the gateway logged show the newest chain deleted", async () => {
    await fresh(async (b, s) => {
      const lines: string[] = [];
      const logged = pino({ level: "info" }, { write: (l: string) => void lines.push(l) });
      const gateway = await AuditWriter.open(s, logged, OPTIONS, secret);
      await gateway.recordDurable(entry(1));
      const cli = await AuditWriter.open(s, log, OPTIONS, secret);
      await cli.recordDurable(entry(2));
      await cli.close();
      await gateway.recordDurable(entry(3));
      await gateway.close(); // its checkpoint names the command's registry entry, in the store and the log
      const checkpoints = parseLoggedCheckpoints(lines.join("\n"));
      assert.equal(checkpoints.length, 1);
      assert.equal((await verifyAuditLog(s, { trust: await pinned(s), logged: checkpoints })).ok, true);

      // Roll back: the newest chain and the one checkpoint that saw it. The store alone is consistent …
      await deleteWholeChain(b.sql, cli.chain);
      await b.sql(`DELETE FROM audit_checkpoints WHERE chain = '${gateway.chain}'`);
      assert.equal((await verifyAuditLog(s, { trust: await pinned(s) })).ok, true);
      // … the log is not.
      const report = await verifyAuditLog(s, { trust: await pinned(s), logged: checkpoints });
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.problems.map((p) => p.kind),
        ["deleted_chain"],
      );
    });
  });

  it("rejects-moved-anchor: deleting a chain's head and moving its anchor is not retention", async () => {
    await fresh(async (b, s) => {
      const { chain } = await writeChain(s);
      assert.equal((await verifyAuditLog(s, { trust: await pinned(s) })).ok, true);
      const anchor = await deleteHeadAndMoveAnchor(b.sql, s, chain);
      assert.equal(anchor, 10);
      assert.equal((await s.readAuditChain(chain, 0, 100))[0]?.chain_seq, 11, "records 1..10 are gone");
      const report = await verifyAuditLog(s, { trust: await pinned(s) });
      const c = report.chains.find((x) => x.chain === chain);
      assert.deepEqual([report.ok, c?.problem?.kind, c?.problem?.seq], [false, "bad_anchor", 10]);
      assert.match(c?.problem?.detail ?? "", /no retention run signed that anchor/);
    });
  });

  it("rejects-resigned-store: a key inserted into the store and every checkpoint re-signed with it", async () => {
    await fresh(async (b, s) => {
      const { gateway, commands } = await gatewayAndCommands(s);
      const { chain } = await writeChain(s);
      const key = (await loadCheckpointSigner(s, secret)).publicKey;
      assert.equal((await verifyAuditLog(s, { trust: await pinned(s) })).ok, true);
      await rewriteAndResign(b.sql, s, { chain, seq: 3, reason: "nothing happened" });
      const stored = await s.listAuditSigningKeys();
      // The rewrite is consistent: against the keys the store now holds it passes (the old bug) …
      const unpinned = await verifyAuditLog(s);
      assert.equal(unpinned.ok, true, JSON.stringify(unpinned));
      assert.equal(unpinned.trust.source, "store");
      // … but not against the pinned key, nor against the server secret.
      for (const t of [
        pinnedTrust(stored, { publicKeys: [key], fingerprints: [] }),
        serverSecretTrust(stored, secret),
      ]) {
        const report = await verifyAuditLog(s, { trust: t });
        assert.equal(report.ok, false, `${t.source}: the re-signed store passed`);
        for (const c of [gateway, chain, ...commands])
          assert.equal(
            report.chains.find((x) => x.chain === c)?.problem?.kind,
            "forged_checkpoint",
            `${t.source}: ${c}`,
          );
        assert.ok(kinds(report).includes("forged_registration"));
        assert.equal(report.trust.untrusted.length, 1, "the intruder's key is named as not trusted");
      }
    });
  });

  it("rejects-deleted-chain after an upgrade: chains older than the registry are listed by its first entry", async () => {
    await fresh(async (b, s) => {
      const { chain: old } = await writeChain(s);
      // Turn it into a chain written before migration 008: no registration, v1 checkpoints.
      const signer = await loadCheckpointSigner(s, secret);
      for (const c of await s.listAuditCheckpoints(old)) {
        const v1 = signer.sign({ ...c, registry: null });
        await b.sql(
          `UPDATE audit_checkpoints SET signature = '${v1.signature}', registry_seq = NULL, registry_hash = NULL WHERE chain = '${old}' AND chain_seq = ${c.chainSeq}`,
        );
      }
      await b.sql(
        `UPDATE audit_chains SET reg_seq = NULL, prev_reg_hash = NULL, reg_hash = NULL, reg_legacy = NULL, reg_key_id = NULL, reg_signature = NULL WHERE chain = '${old}'`,
      );
      assert.equal((await verifyAuditLog(s, { trust: await pinned(s) })).ok, true, "an older store verifies");
      await writeChain(s); // the first registration lists the older chain
      const upgraded = await verifyAuditLog(s, { trust: await pinned(s) });
      assert.deepEqual([upgraded.ok, upgraded.chains.length], [true, 2], JSON.stringify(upgraded.problems));
      await deleteWholeChain(b.sql, old);
      const report = await verifyAuditLog(s, { trust: await pinned(s) });
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.problems.map((p) => [p.kind, p.chain]),
        [["deleted_chain", old]],
      );
    });
  });

  it("ignores-inserted-signing-key: a key row inserted without the secret neither signs nor stops the writer", async () => {
    await fresh(async (b, s) => {
      const genuine = (await loadCheckpointSigner(s, secret)).keyId;
      const pair = generateKeyPairSync("ed25519");
      const id = auditKeyId(pair.publicKey);
      const pem = pair.publicKey.export({ format: "pem", type: "spki" }).toString();
      await b.sql(
        `INSERT INTO audit_signing_keys (id, public_key, private_key_sealed, created_at) VALUES ('${id}', '${pem}', 'v1.AAAA.AAAA.AAAA', ${Date.now() + 60_000})`,
      );
      assert.equal((await s.listAuditSigningKeys())[0]?.id, id, "the intruder's key is the newest row");
      const { chain } = await writeChain(s);
      assert.ok((await s.listAuditCheckpoints(chain)).every((c) => c.keyId === genuine));
      const report = await verifyAuditLog(s, {
        trust: serverSecretTrust(await s.listAuditSigningKeys(), secret),
      });
      assert.deepEqual([report.ok, report.trust.keys, report.trust.untrusted], [true, [genuine], [id]]);
    });
  });

  it("rejects-unchained-records-dated-now: records inserted outside any chain", async () => {
    await fresh(async (b, s) => {
      // Records from before the hash chain existed (they predate the first chain) are only counted.
      await insertUnchainedRecord(b.sql, new Date(Date.now() - 86_400_000), "legacy 1");
      await insertUnchainedRecord(b.sql, new Date(Date.now() - 86_000_000), "legacy 2");
      await gatewayAndCommands(s);
      const before = await verifyAuditLog(s, { trust: await pinned(s) });
      assert.deepEqual([before.ok, before.unchained], [true, 2], JSON.stringify(before.problems));

      await insertUnchainedRecord(b.sql, new Date());
      const now = await verifyAuditLog(s, { trust: await pinned(s) });
      assert.equal(now.ok, false);
      assert.ok(kinds(now).every((k) => k === "unchained_records"));
      assert.match(now.problems.map((p) => p.detail).join("\n"), /after the hash chain began/);
    });
    await fresh(async (b, s) => {
      await gatewayAndCommands(s);
      // Back-dated to before the chain began: still more unchained records than entry 1 signed.
      await insertUnchainedRecord(b.sql, new Date(Date.now() - 365 * 86_400_000));
      const report = await verifyAuditLog(s, { trust: await pinned(s) });
      assert.deepEqual([report.ok, kinds(report)], [false, ["unchained_records"]]);
    });
  });

  // Replicas share PostgreSQL (two SQLite connections writing from one thread would deadlock),
  // so this case exists for PostgreSQL only.
  if (kind === "postgres")
    it("two writers sharing one store keep separate chains that both verify", async () => {
      const other = await backend.open();
      try {
        const a = await AuditWriter.open(store, log, OPTIONS, secret);
        const b = await AuditWriter.open(other, log, OPTIONS, secret);
        assert.notEqual(a.chain, b.chain);
        await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).recordDurable(entry(i))),
        );
        await Promise.all([a.close(), b.close()]);
        for (const chain of [a.chain, b.chain]) {
          const c = await chainOf(chain);
          assert.deepEqual([c.ok, c.records], [true, 20], JSON.stringify(c.problem));
        }
      } finally {
        await other.close();
      }
    });
}

describe("audit verify on sqlite", () => suite("sqlite", sqliteBackend));
describe("audit verify on postgres", { skip: await postgresSkip() }, () =>
  suite("postgres", postgresBackend),
);
