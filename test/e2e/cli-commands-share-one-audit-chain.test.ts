/**
 * Regression (issue 12): every CLI command started a one-record audit chain of its own, so
 * `audit verify` listed one chain per command ever run. Management commands now continue one
 * chain per store (`operator-cli`), also when several run at once, on SQLite and PostgreSQL:
 * the chain never forks and verifies whole.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { loadCheckpointSigner } from "../../src/audit/checkpoints.js";
import { adminRecord } from "../../src/audit/records.js";
import { appendToSharedChain, OPERATOR_CLI_CHAIN } from "../../src/audit/sharedChain.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { serverSecret } from "../../src/authn/serverSecret.js";
import { loadConfig } from "../../src/config/load.js";
import { openStore } from "../../src/store/open.js";
import { cleanup, DEMO_SERVER, runCli, tempDir } from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

interface VerifyJson {
  ok: boolean;
  chains: {
    chain: string;
    ok: boolean;
    records: number;
    firstSeq: number;
    lastSeq: number;
    uncheckpointed: number;
  }[];
  problems: unknown[];
}

function suite(name: string, storeSpec: () => Promise<{ store?: string; drop(): Promise<void> }>): void {
  let dir: string;
  let config: string;
  let drop: () => Promise<void> = async () => {};

  const cli = async (args: string[]) => {
    const r = await runCli([...args, "--config", config, "--json"]);
    assert.equal(r.code, 0, `portcullis ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const verify = async (): Promise<VerifyJson> => {
    const r = await runCli(["audit", "verify", "--config", config, "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as VerifyJson;
  };

  before(async () => {
    dir = tempDir(`portcullis-cli-chain-${name}-`);
    const spec = await storeSpec();
    drop = spec.drop;
    config = join(dir, "portcullis.yaml");
    writeFileSync(
      config,
      stringify({
        dataDir: join(dir, "data"),
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
        ...(spec.store === undefined ? {} : { store: spec.store }),
      }),
    );
  });
  after(async () => {
    await drop();
    cleanup(dir);
  });

  it(`${name}: three CLI commands make one chain of three records that verifies`, async () => {
    const a = await cli(["keys", "create", "--name", "alpha"]);
    await cli(["keys", "create", "--name", "bravo"]);
    await cli(["keys", "revoke", String(a.id)]);
    const report = await verify();
    assert.deepEqual(
      report.chains.map((c) => [c.chain, c.ok, c.records, c.firstSeq, c.lastSeq, c.uncheckpointed]),
      [[OPERATOR_CLI_CHAIN, true, 3, 1, 3, 0]],
    );
    const human = await runCli(["audit", "verify", "--config", config]);
    assert.match(human.stdout, /^OK +operator-cli +3 records \(seq 1\.\.3\), 3 checkpoints$/m);
    assert.match(human.stdout, /audit log intact: 1 chains, 3 records/);
  });

  it(`${name}: two CLI commands run at once neither fork nor corrupt the chain`, async () => {
    const before = (await verify()).chains[0]?.records ?? 0;
    const runs = await Promise.all(
      ["charlie", "delta"].map((n) => runCli(["keys", "create", "--name", n, "--config", config, "--json"])),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const report = await verify();
    assert.equal(report.chains.length, 1);
    assert.deepEqual(
      report.chains.map((c) => [c.ok, c.records, c.lastSeq]),
      [[true, before + 2, before + 2]],
    );
  });

  it(`${name}: writers racing on separate connections keep one linear chain`, async () => {
    const loaded = loadConfig({ config });
    const stores = await Promise.all([openStore(loaded.storeSpec), openStore(loaded.storeSpec)]);
    try {
      const secret = serverSecret(loaded.config, { create: false });
      const signers = await Promise.all(stores.map((s) => loadCheckpointSigner(s, secret)));
      const start = (await verifyAuditLog(stores[0] as never)).chains[0]?.lastSeq ?? 0;
      const appends = stores.flatMap((store, i) =>
        Array.from({ length: 10 }, (_, n) =>
          appendToSharedChain(store, signers[i] as never, OPERATOR_CLI_CHAIN, [
            adminRecord("dev", { principal: `operator:racer${i}`, method: "cli" }, `race ${i}.${n}`, {}),
          ]),
        ),
      );
      const results = await Promise.all(appends);
      const seqs = results.map((r) => r?.lastSeq).sort((x, y) => (x as number) - (y as number));
      assert.deepEqual(
        seqs,
        Array.from({ length: 20 }, (_, k) => start + k + 1),
        "every append got its own place in the chain",
      );
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const report = await verify();
    assert.deepEqual(
      report.chains.map((c) => [c.chain, c.ok, c.uncheckpointed]),
      [[OPERATOR_CLI_CHAIN, true, 0]],
    );
    assert.deepEqual(report.problems, []);
  });
}

describe("CLI commands share one audit chain (SQLite)", () =>
  suite("sqlite", async () => ({ drop: async () => {} })));

describe("CLI commands share one audit chain (PostgreSQL)", { skip: await postgresSkip() }, () => {
  let db: TestDatabase | null = null;
  suite("postgres", async () => {
    db = await createTestDatabase();
    return { store: db.url, drop: async () => db?.drop() };
  });
});
