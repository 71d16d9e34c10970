/**
 * The MCP conformance suite's server scenarios give the same results through the gateway
 * (with an API key) as against the upstream directly. The suite needs Node 22+, taken from
 * tools/node22 (installed by .ci/run); elsewhere the test is skipped with the reason.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { startConformanceTarget } from "../fixtures/conformance-target.js";
import { type RunningGateway, startGateway } from "../helpers/gateway.js";

interface ScenarioResult {
  status: string;
  checks: { passed: number; failed: number; warning: number };
}
interface Report {
  complete: boolean;
  totals: { scenarios: number };
  scenarios: Record<string, ScenarioResult>;
}

const { node22ToolsMissing, runConformance } = (await import(
  pathToFileURL(resolve("scripts/conformance.mjs")).href
)) as {
  node22ToolsMissing(needs?: string[]): string | null;
  runConformance(opts: { url: string; headers?: string[]; scenarios?: string[] }): Promise<unknown>;
};
// Checked here, at load time, without throwing: a bare clone (no tools/node22) skips with the reason.
const missing = node22ToolsMissing(["server"]);
const skip = missing !== null && process.env.CI !== "true" ? missing : false;
if (skip) console.log(`# ${skip}`);

describe("MCP conformance server scenarios: direct vs through the gateway", { skip }, () => {
  let target: { url: string; close(): Promise<void> };
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    target = await startConformanceTarget({ port: 0 });
    gw = await startGateway({
      config: { environment: "test", servers: { conf: { transport: "http", url: target.url } } },
    });
    key = (await gw.cli(["keys", "create", "--name", "conformance"])).key as string;
  });
  after(async () => {
    await gw.stop();
    await target.close();
  });

  it("passes the same scenarios with the same checks", { timeout: 600_000 }, async () => {
    const direct = (await runConformance({ url: target.url })) as Report;
    const proxied = (await runConformance({
      url: gw.endpoint("conf"),
      headers: [`Authorization: Bearer ${key}`],
    })) as Report;
    assert.ok(direct.complete && proxied.complete, "both runs completed");
    assert.ok(direct.totals.scenarios >= 30, `ran ${direct.totals.scenarios} scenarios`);
    const summary = (r: Report) =>
      Object.fromEntries(
        Object.entries(r.scenarios).map(([name, s]) => [
          name,
          `${s.status} ${s.checks.passed}/${s.checks.failed}/${s.checks.warning}`,
        ]),
      );
    console.log(`# direct:  ${JSON.stringify(summary(direct))}`);
    assert.deepEqual(summary(proxied), summary(direct));
    const passed = Object.values(direct.scenarios).filter((s) => s.status === "passed").length;
    assert.ok(passed >= 30, `${passed} scenarios pass directly`);
  });

  it("fails every scenario without a credential (the gateway is not open)", {
    timeout: 600_000,
  }, async () => {
    const anonymous = (await runConformance({
      url: gw.endpoint("conf"),
      scenarios: ["tools-list", "ping"],
    })) as Report;
    for (const s of Object.values(anonymous.scenarios)) assert.notEqual(s.status, "passed");
  });
});
