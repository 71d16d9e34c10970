/**
 * `portcullis audit verify` against an intruder who can write the database but has no server
 * secret (issue 10 item 2), through the real CLI on SQLite and PostgreSQL. A gateway starts
 * first and prints the checkpoint key's public half, which the operator keeps outside the
 * store; CLI commands then write their records (continuing the operator CLI's one chain). Each rewrite runs on its
 * own copy of that store: `verify --public-key <file>` passes on the untouched copy and
 * fails on the rewritten one.
 */
import assert from "node:assert/strict";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { stringify } from "yaml";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import {
  deleteHeadAndMoveAnchor,
  deleteWholeChain,
  insertUnchainedRecord,
  rewriteAndResign,
  type Sql,
} from "../helpers/auditTamper.js";
import { cleanup, DEMO_SERVER, runCli, startGateway, tempDir } from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

interface VerifyJson {
  ok: boolean;
  intact: boolean;
  trust: { source: string; keys: string[]; untrusted: string[] };
  chains: { chain: string; ok: boolean; records: number; problem: { kind: string; detail: string } | null }[];
  problems: { kind: string; detail: string }[];
}

/** A copy of the prepared store: its config file, direct SQL on it, and the store for reading. */
interface StoreCopy {
  config: string;
  spec: string;
  sql: Sql;
  drop(): Promise<void>;
}

interface Backend {
  /** Extra config for the gateway and the CLI (the store). */
  store(dir: string): Promise<Record<string, unknown>>;
  /** A copy of the store as prepared in `dir` (gateway and CLI stopped). */
  copy(dir: string): Promise<StoreCopy>;
  cleanup(): Promise<void>;
}

function sqliteBackend(): Backend {
  return {
    store: async () => ({}),
    async copy(dir) {
      const copy = tempDir("portcullis-audit-copy-");
      cpSync(join(dir, "data"), join(copy, "data"), { recursive: true });
      const config = join(copy, "portcullis.yaml");
      writeFileSync(config, stringify({ dataDir: join(copy, "data"), environment: "dev" }));
      const spec = join(copy, "data", "portcullis.db");
      return {
        config,
        spec,
        async sql(statement) {
          const db = new BetterSqlite3(spec);
          try {
            db.exec(statement);
          } finally {
            db.close();
          }
        },
        drop: async () => cleanup(copy),
      };
    },
    cleanup: async () => {},
  };
}

function postgresBackend(): Backend {
  let base: TestDatabase | null = null;
  return {
    async store() {
      base = await createTestDatabase();
      return { store: base.url };
    },
    async copy(dir) {
      const db = await createTestDatabase(base as TestDatabase);
      const copy = tempDir("portcullis-audit-copy-");
      cpSync(join(dir, "data"), join(copy, "data"), { recursive: true });
      const config = join(copy, "portcullis.yaml");
      writeFileSync(config, stringify({ dataDir: join(copy, "data"), environment: "dev", store: db.url }));
      return {
        config,
        spec: db.url,
        sql: db.admin,
        async drop() {
          await db.drop();
          cleanup(copy);
        },
      };
    },
    cleanup: async () => {
      await base?.drop();
    },
  };
}

function suite(name: string, backend: Backend): void {
  const dir = tempDir("portcullis-audit-rewrites-");
  const pinned = join(dir, "audit-key.pem");
  const gatewayLog = join(dir, "gateway.log");
  let printed: { fingerprint: string; publicKey: string } | undefined;
  const verify = async (args: string[]) => {
    const r = await runCli(["audit", "verify", "--json", ...args]);
    assert.notEqual(r.code, 2, r.stderr);
    return { code: r.code, report: JSON.parse(r.stdout) as VerifyJson, stderr: r.stderr };
  };
  /** Runs `attack` on a fresh copy, checks the pinned verify passed before and fails after. */
  const attacked = async (attack: (copy: StoreCopy, store: Store) => Promise<void>) => {
    const copy = await backend.copy(dir);
    try {
      const before = await verify(["--config", copy.config, "--public-key", pinned]);
      assert.deepEqual([before.code, before.report.ok], [0, true], JSON.stringify(before.report));
      const store = await openStore(copy.spec);
      try {
        await attack(copy, store);
      } finally {
        await store.close();
      }
      const after = await verify(["--config", copy.config, "--public-key", pinned]);
      assert.deepEqual([after.code, after.report.ok], [1, false], "the rewritten store passed");
      return {
        after: after.report,
        kinds: [
          ...after.report.problems.map((p) => p.kind),
          ...after.report.chains.filter((c) => !c.ok).map((c) => c.problem?.kind),
        ],
        copy,
      };
    } finally {
      await copy.drop();
    }
  };
  /** The chains in registry order: the gateway's, then the operator CLI's. */
  const commandChains = async (store: Store) =>
    (await store.listAuditChains())
      .filter((c) => c.registration !== null)
      .sort((a, b) => (a.registration?.seq ?? 0) - (b.registration?.seq ?? 0))
      .map((c) => c.chain);

  before(async () => {
    const extra = await backend.store(dir);
    const gw = await startGateway({
      dir,
      config: {
        environment: "dev",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
        ...extra,
      },
    });
    try {
      const created = gw.logs.find((l) => l.event === "audit.key_created");
      assert.ok(created, "first start prints the new audit checkpoint key");
      printed = { fingerprint: String(created.fingerprint), publicKey: String(created.publicKey) };
      writeFileSync(pinned, printed.publicKey);
      // A refused request: the gateway's own chain gets a record (and a checkpoint at stop).
      const refused = await fetch(gw.endpoint("demo"), { method: "POST", body: "{}" });
      assert.equal(refused.status, 401);
      for (const n of ["alpha", "bravo", "charlie"]) await gw.cli(["keys", "create", "--name", n]);
    } finally {
      await gw.stop();
      // The operator ships the gateway's log elsewhere; its checkpoints are compared with the store.
      writeFileSync(gatewayLog, `${gw.logs.map((l) => JSON.stringify(l)).join("\n")}\n`);
    }
  });
  after(async () => {
    await backend.cleanup();
    cleanup(dir);
  });

  it(`${name}: first start prints the key to pin, and verify --public-key passes on the untouched store`, async () => {
    const listed = await runCli(["audit", "public-key", "--json", "--config", join(dir, "portcullis.yaml")]);
    assert.equal(listed.code, 0, listed.stderr);
    const keys = JSON.parse(listed.stdout) as { fingerprint: string; sealedUnderServerSecret: boolean }[];
    assert.deepEqual(
      keys.map((k) => [k.fingerprint, k.sealedUnderServerSecret]),
      [[printed?.fingerprint, true]],
    );
    const fingerprint = printed?.fingerprint as string;
    for (const pin of [
      ["--public-key", pinned],
      ["--key-fingerprint", fingerprint],
    ]) {
      const r = await verify(["--config", join(dir, "portcullis.yaml"), ...pin]);
      assert.deepEqual([r.code, r.report.ok, r.report.trust.source], [0, true, "pinned"], r.stderr);
      assert.deepEqual(
        r.report.chains.filter((c) => c.chain === "operator-cli").map((c) => c.records),
        [3],
        "the three commands' records, in the operator CLI's chain",
      );
    }
  });

  it(`${name}: rejects-deleted-chain`, async () => {
    const { kinds, after } = await attacked(async (copy, store) => {
      const [, middle] = await commandChains(store);
      await deleteWholeChain(copy.sql, middle as string);
    });
    assert.ok(kinds.includes("deleted_chain"), JSON.stringify(after.problems));
  });

  it(`${name}: rejects-moved-anchor`, async () => {
    const { kinds } = await attacked(async (copy, store) => {
      const [first] = await commandChains(store);
      await deleteHeadAndMoveAnchor(copy.sql, store, first as string);
    });
    assert.deepEqual(kinds, ["bad_anchor"]);
  });

  it(`${name}: rejects-resigned-store`, async () => {
    const { kinds, after } = await attacked(async (copy, store) => {
      const [, middle] = await commandChains(store);
      await rewriteAndResign(copy.sql, store, {
        chain: middle as string,
        seq: 1,
        reason: "nothing happened",
      });
    });
    assert.ok(kinds.includes("forged_checkpoint") && kinds.includes("forged_registration"), kinds.join());
    assert.equal(after.trust.untrusted.length, 1, "names the inserted key as not trusted");
  });

  it(`${name}: rejects-unchained-records-dated-now`, async () => {
    const { kinds } = await attacked(async (copy) => insertUnchainedRecord(copy.sql, new Date()));
    assert.ok(kinds.length > 0 && kinds.every((k) => k === "unchained_records"), kinds.join());
  });

  it(`${name}: rejects-rolled-back-store (the checkpoints in the gateway's log)`, async () => {
    const copy = await backend.copy(dir);
    try {
      const store = await openStore(copy.spec);
      try {
        const chains = await commandChains(store);
        const gatewayChain = chains[0] as string;
        assert.ok(
          (await store.listAuditCheckpoints(gatewayChain)).length > 0,
          "the gateway checkpointed at stop",
        );
        // Roll back: the newest chain, and the gateway's checkpoint that saw it.
        await deleteWholeChain(copy.sql, chains.at(-1) as string);
        await copy.sql(`DELETE FROM audit_checkpoints WHERE chain = '${gatewayChain}'`);
      } finally {
        await store.close();
      }
      // Consistent with itself: the store alone cannot show it …
      const alone = await verify(["--config", copy.config, "--public-key", pinned]);
      assert.equal(alone.code, 0, JSON.stringify(alone.report.problems));
      // … the gateway's log does.
      const logged = await verify([
        "--config",
        copy.config,
        "--public-key",
        pinned,
        "--checkpoints",
        gatewayLog,
      ]);
      assert.equal(logged.code, 1);
      assert.ok(
        logged.report.problems.some((p) => p.kind === "deleted_chain"),
        JSON.stringify(logged.report.problems),
      );
    } finally {
      await copy.drop();
    }
  });

  it(`${name}: without a pinned key verify fails, saying it cannot rule out a re-signed store`, async () => {
    const copy = await backend.copy(dir);
    try {
      const store = await openStore(copy.spec);
      try {
        const [, middle] = await commandChains(store);
        await rewriteAndResign(copy.sql, store, {
          chain: middle as string,
          seq: 1,
          reason: "nothing happened",
        });
      } finally {
        await store.close();
      }
      // Another machine: the store, but neither the data directory's server secret nor a pin.
      const elsewhere = ["--store", copy.spec, "--data-dir", tempDir("portcullis-no-secret-")];
      const plain = await runCli(["audit", "verify", ...elsewhere]);
      assert.equal(plain.code, 1, plain.stdout);
      assert.match(plain.stdout, /cannot rule out a store rewritten and re-signed/);
      assert.match(plain.stdout, /NOT VERIFIED/);
      // Accepting the store's own keys is an explicit choice, and the warning stays.
      const accepted = await runCli(["audit", "verify", ...elsewhere, "--trust-store-keys"]);
      assert.equal(accepted.code, 0, accepted.stdout);
      assert.match(accepted.stdout, /WARNING: no key pinned outside the store/);
      // With the gateway's config (its server secret) the inserted key is not trusted.
      const onGatewayHost = await verify(["--config", copy.config]);
      assert.deepEqual([onGatewayHost.code, onGatewayHost.report.trust.source], [1, "server-secret"]);
    } finally {
      await copy.drop();
    }
  });
}

describe("audit verify against store rewrites on SQLite", () => suite("sqlite", sqliteBackend()));
describe("audit verify against store rewrites on PostgreSQL", { skip: await postgresSkip() }, () =>
  suite("postgres", postgresBackend()),
);
