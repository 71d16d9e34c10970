/**
 * Management actions are audited in the tamper-evident trail like requests: API keys,
 * users, machine clients, signing keys and approvals changed from the CLI each leave a
 * hash-chained, checkpointed record naming the operator, and `audit verify` covers them.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEMO_SERVER, type RunningGateway, runCli, startGateway } from "../helpers/gateway.js";

interface Row {
  reason: string;
  method: string | null;
  principal: string | null;
  chain?: string;
  hash?: string;
  detail: { event?: string } | null;
}

describe("management actions in the audit trail", () => {
  let gw: RunningGateway;
  const rows = async (): Promise<Row[]> => {
    const r = await runCli(["audit", "search", "--limit", "200", "--config", gw.configFile, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row);
  };

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
  });
  after(() => gw?.stop());

  it("records key, user, client and signing-key changes with the operator, chained and verifiable", async () => {
    const key = await gw.cli(["keys", "create", "--name", "audited"]);
    await gw.cli(["keys", "revoke", key.id as string]);
    await gw.cli(["users", "add", "dana"]);
    await gw.cli(["users", "remove", "dana"]);
    const client = await gw.cli([
      "clients",
      "create",
      "--name",
      "bot",
      "--auth",
      "client_secret_basic",
      "--servers",
      "demo",
    ]);
    await gw.cli(["clients", "revoke", client.clientId as string]);
    await gw.cli(["oauth", "signing-keys", "rotate"]);

    const events = (await rows()).filter((r) => r.method === "cli");
    const seen = new Set(events.map((r) => r.detail?.event));
    for (const e of [
      "key.created",
      "key.revoked",
      "user.added",
      "user.removed",
      "client.changed",
      "oauth.signing_keys_rotated",
    ])
      assert.ok(seen.has(e), `${e} audited: ${[...seen].join(", ")}`);
    for (const r of events) {
      assert.match(r.principal ?? "", /^operator:/, "names who ran the command");
      assert.ok(r.chain && r.hash, "hash-chained");
    }
    assert.doesNotMatch(JSON.stringify(events), /clientSecret|pcl_dev_/, "no secret in the trail");

    const verify = await runCli(["audit", "verify", "--config", gw.configFile, "--json"]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const report = JSON.parse(verify.stdout) as { ok: boolean; unchained: number };
    assert.equal(report.ok, true);
    assert.equal(report.unchained, 0, "every record is in a chain");
  });
});
