/**
 * The MCP conformance suite's authorization server scenarios (`conformance authorization`,
 * @modelcontextprotocol/conformance 0.2.0 from tools/node22) pass against the gateway's
 * built-in authorization server, for spec revisions 2025-11-25 and 2026-07-28:
 * - authorization-server-metadata-endpoint: RFC 8414 metadata, issuer, S256, CIMD support;
 * - authorization-code-grant: a public client (registered here by DCR with the suite's
 *   loopback callback) gets a code through sign-in and consent — the "browser" is the shared
 *   headless driver — and exchanges it with PKCE and the MCP endpoint as resource.
 *
 * The suite needs Node 22+ (tools/node22, installed by .ci/run). Without it the test is
 * skipped with the reason, except under CI=true where it must run.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { signInAndConsent } from "../helpers/browserLogin.js";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";

interface ScenarioResult {
  status: "passed" | "warning" | "failed" | "error";
  checks: { passed: number; failed: number; warning: number };
  details: Array<{ id: string; status: string; message?: string }>;
}
interface AuthorizationReport {
  complete: boolean;
  conformanceVersion: string;
  totals: { scenarios: number; checks: { passed: number; failed: number; warning: number } };
  scenarios: Record<string, ScenarioResult>;
  signIns: Array<{ ok: boolean; error?: string }>;
  suiteSummary: string | null;
}

const { node22ToolsMissing, formatTable, runAuthorizationConformance } = (await import(
  pathToFileURL(resolve("scripts/conformance.mjs")).href
)) as {
  node22ToolsMissing(needs?: string[]): string | null;
  formatTable(report: AuthorizationReport): string;
  runAuthorizationConformance(opts: {
    url: string;
    resource?: string;
    specVersion?: string;
    timeoutMs?: number;
    signIn?: (authorizationUrl: URL) => Promise<URL>;
  }): Promise<AuthorizationReport>;
};

// The binary alone is not enough: the authorization scenarios come from tools/node22's own suite.
const missing = node22ToolsMissing(["authorization"]);
const skip = missing !== null && process.env.CI !== "true" ? missing : false;
if (skip) console.log(`# ${skip}`);

/** One suite run takes about a second; the sign-in is the only wait. */
const RUN_TIMEOUT_MS = 45_000;

/** The scenarios 0.2.0-alpha.12 has; a newer suite may add more, which must pass too. */
const KNOWN_SCENARIOS = ["authorization-server-metadata-endpoint", "authorization-code-grant"];

describe("MCP conformance authorization server scenarios against the built-in authorization server", {
  skip,
}, () => {
  let gw: RunningGateway;
  let user: { username: string; password: string };
  const signIn = (start: URL) => signInAndConsent(start, { user });

  before(async () => {
    gw = await startGateway({
      config: {
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const added = await gw.cli(["users", "add", "conformance"]);
    user = { username: String(added.username), password: String(added.password) };
  });
  after(async () => {
    await gw?.stop();
  });

  for (const specVersion of ["2025-11-25", "2026-07-28"]) {
    it(`passes every scenario for spec ${specVersion}`, { timeout: 60_000 }, async () => {
      const report = await runAuthorizationConformance({
        url: gw.url,
        resource: gw.endpoint("demo"),
        specVersion,
        signIn,
        timeoutMs: RUN_TIMEOUT_MS,
      });
      console.log(`# ${formatTable(report).replaceAll("\n", "\n# ")}`);
      console.log(`# suite output:\n# ${String(report.suiteSummary).replaceAll("\n", "\n# ")}`);
      assert.ok(report.complete, "every scenario produced a result");
      for (const name of KNOWN_SCENARIOS) assert.ok(name in report.scenarios, `${name} ran`);
      for (const [name, s] of Object.entries(report.scenarios)) {
        assert.equal(s.status, "passed", `${name}: ${JSON.stringify(s.details)}`);
      }
      assert.equal(report.totals.checks.failed, 0);
      assert.deepEqual(report.signIns, [{ ok: true }], "the user signed in once, for the code grant");
      assert.match(String(report.suiteSummary), /Total: \d+ passed, 0 failed/);
    });
  }

  it("is refused an authorization request without a resource indicator (the suite's default)", {
    timeout: 60_000,
  }, async () => {
    // MCP authorization 2025-11-25, "Resource Parameter Implementation": clients MUST send
    // `resource` (RFC 8707) in authorization and token requests, and the built-in server binds
    // every token to one MCP endpoint; the suite sends it only when given --resource.
    const report = await runAuthorizationConformance({ url: gw.url, signIn, timeoutMs: RUN_TIMEOUT_MS });
    assert.equal(report.scenarios["authorization-server-metadata-endpoint"]?.status, "passed");
    const grant = report.scenarios["authorization-code-grant"];
    assert.equal(grant?.status, "failed");
    assert.match(String(grant?.details[0]?.message), /Authorization error: invalid_target/);
  });
});
