/**
 * `portcullis policy check|test|explain|decision`, run as operators run them: the real CLI
 * against the default pack, the pack's decision table, files of their own and a running
 * gateway's audit log.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import {
  cleanup,
  DEFAULT_POLICY_PACK,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";

const CASES = "policies/default-cases.yaml";

type Json = Record<string, unknown>;

async function json(args: string[], expectCode = 0): Promise<Json> {
  const r = await runCli([...args, "--json"]);
  assert.equal(r.code, expectCode, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as Json;
}

interface Trace {
  id: string;
  file: string;
  line: number;
  effect: string;
  matched: boolean;
  why: string;
}

describe("portcullis policy (CLI)", () => {
  let dir: string;
  before(() => {
    dir = tempDir("portcullis-policy-cli-");
  });
  after(() => cleanup(dir));

  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  describe("check", () => {
    it("compiles the default pack when no paths and no config name one", async () => {
      const out = await json(["policy", "check"]);
      assert.equal(out.ok, true);
      assert.match(out.version as string, /^[0-9a-f]{12}$/);
      assert.equal(out.ruleCount, 14);
      assert.deepEqual(
        (out.files as string[]).map((f) => f.slice(DEFAULT_POLICY_PACK.length + 1)),
        [
          "00-baseline.yaml",
          "10-read.yaml",
          "15-tasks.yaml",
          "20-write.yaml",
          "30-destructive.yaml",
          "40-prod.yaml",
        ],
      );
    });

    it("compiles the config's policy.paths, relative to the config file", async () => {
      write(
        "mine.yaml",
        "rules:\n  - id: everyone-reads\n    effect: allow\n    match:\n      tiers: [read]\n",
      );
      const config = write("portcullis.yaml", stringify({ policy: { paths: ["mine.yaml"] } }));
      const out = await json(["policy", "check", "--config", config]);
      assert.equal(out.ruleCount, 1);
      assert.deepEqual(out.files, [join(dir, "mine.yaml")]);
      const human = await runCli(["policy", "check", "--config", config]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^policy [0-9a-f]{12}: 1 rules in 1 files/);
    });

    it("exits 2 with file:line when a rule does not compile", async () => {
      const bad = write(
        "bad.yaml",
        [
          "rules:",
          "  - id: ok",
          "    effect: allow",
          "  - id: typo",
          "    effect: deny",
          "    when: principal.expiresIn == null",
          "",
        ].join("\n"),
      );
      const r = await runCli(["policy", "check", bad]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /bad\.yaml:6: when: unknown field `principal\.expiresIn`/);
      const out = await json(["policy", "check", bad], 2);
      assert.equal(out.error, "policy");
      assert.equal(out.file, bad);
      assert.equal(out.line, 6);
    });

    it("names a misspelt key (docs/policy.md's `efect:`) with file:line and the key it meant", async () => {
      const typo = write(
        "efect-typo.yaml",
        [
          "rules:",
          "  - id: payments-refunds-need-review",
          "    efect: review",
          "    match: { servers: [payments], tools: [refund_*] }",
          "",
        ].join("\n"),
      );
      const r = await runCli(["policy", "check", typo]);
      assert.equal(r.code, 2);
      assert.equal(
        r.stderr,
        `portcullis: ${typo}:3: unknown key 'efect' in rule 'payments-refunds-need-review': did you mean 'effect'? (allowed: id, description, effect, match, when, review)\n`,
      );
      const out = await json(["policy", "check", typo], 2);
      assert.deepEqual([out.file, out.line], [typo, 3]);
      assert.match(out.detail as string, /^unknown key 'efect' .*did you mean 'effect'\?/);
    });
  });

  describe("test", () => {
    it("passes the default pack's own decision table", async () => {
      const r = await runCli(["policy", "test", CASES]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /^FAIL/m);
      assert.match(r.stdout, /^PASS {2}an API key calls a write-tier tool: deny/m);
      const out = await json(["policy", "test", CASES]);
      assert.equal(out.ok, true);
      assert.equal(out.failed, 0);
      assert.ok((out.passed as number) >= 18, String(out.passed));
    });

    it("exits 1 and names the case whose expectation the policy does not meet", async () => {
      const cases = write(
        "wrong.yaml",
        stringify({
          cases: [
            {
              name: "reads with a key",
              request: { server: "demo", tool: "get_time", tier: "read" },
              expect: "allow",
            },
            {
              name: "an API key may write (wrong on purpose)",
              principal: { method: "api_key" },
              request: { tool: "add_note", tier: "write" },
              expect: "allow",
            },
            {
              name: "the rule that decides is named",
              request: { tool: "get_time", tier: "read" },
              expect: "allow",
              rules: ["allow-discovery"],
            },
          ],
        }),
      );
      const r = await runCli(["policy", "test", cases]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^PASS {2}reads with a key: allow \(rules: read-tier-tools\)/m);
      assert.match(
        r.stdout,
        /^FAIL {2}an API key may write \(wrong on purpose\) \(#2\): expected allow, got deny\n\s+rules: none; reason: no rule allows this/m,
      );
      assert.match(
        r.stdout,
        /^FAIL {2}the rule that decides is named \(#3\): expected rules allow-discovery, got read-tier-tools/m,
      );
      assert.match(r.stdout, /1 passed, 2 failed/);
      const out = await json(["policy", "test", cases], 1);
      assert.equal(out.ok, false);
      const failed = (out.cases as Json[]).filter((c) => c.pass === false).map((c) => c.name);
      assert.deepEqual(failed, ["an API key may write (wrong on purpose)", "the rule that decides is named"]);
    });

    it("rejects a cases file with an unknown key, naming the case and the line", async () => {
      const cases = write(
        "typo.yaml",
        [
          "cases:",
          "  - name: fine",
          "    expect: deny",
          "  - name: misspelt",
          "    principal:",
          "      metod: oauth",
          "    expect: deny",
          "",
        ].join("\n"),
      );
      const r = await runCli(["policy", "test", cases]);
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /typo\.yaml:6: case #2 "misspelt": unknown key "metod" in principal: did you mean "method"\? \(allowed: id, method/,
      );
      const bad = write("bad-expect.yaml", "cases:\n  - request: { tool: x }\n    expect: maybe\n");
      const r2 = await runCli(["policy", "test", bad]);
      assert.equal(r2.code, 2);
      assert.match(r2.stderr, /bad-expect\.yaml:3: case #1: expect: /);
      // A misspelt required key is reported as itself, not as the key it hides.
      const hidden = write("expct.yaml", "cases:\n  - name: typo\n    expct: deny\n");
      const r3 = await runCli(["policy", "test", hidden]);
      assert.equal(r3.code, 2);
      assert.match(r3.stderr, /expct\.yaml:3: case #1 "typo": unknown key "expct": did you mean "expect"\?/);
    });

    it("runs against --policy instead of the configured policy", async () => {
      const allowAll = write("allow-all.yaml", "rules:\n  - id: everything\n    effect: allow\n");
      const cases = write(
        "all.yaml",
        "cases:\n  - name: writes\n    request: { tool: add_note, tier: write }\n    expect: allow\n",
      );
      const out = await json(["policy", "test", cases, "--policy", allowAll]);
      assert.equal(out.ok, true);
      assert.deepEqual((out.cases as Json[])[0]?.ruleIds, ["everything"]);
    });
  });

  describe("explain", () => {
    it("shows the decision and every rule with file:line, matched or not and why", async () => {
      const out = await json([
        "policy",
        "explain",
        "--principal",
        "method=api_key,kind=service",
        "--server",
        "demo",
        "--tool",
        "add_note",
        "--tier",
        "write",
      ]);
      const decision = out.decision as Json;
      assert.equal(decision.effect, "deny");
      assert.equal(decision.reason, "no rule allows this");
      const rules = out.rules as Trace[];
      assert.equal(rules.length, 14);
      const write = rules.find((t) => t.id === "write-tier-needs-user-oauth");
      assert.ok(write);
      assert.equal(write.matched, false);
      assert.equal(write.file, join(DEFAULT_POLICY_PACK, "20-write.yaml"));
      assert.equal(write.line, 3);
      assert.match(write.why, /authMethods: "api_key" matches none of \["oauth"\]/);

      const human = await runCli([
        "policy",
        "explain",
        "--principal",
        "method=oauth,kind=user,scopes=mcp|mcp:tools,groups=sre,expiresIn=3600",
        "--server",
        "demo",
        "--tool",
        "add_note",
        "--tier",
        "write",
      ]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^decision +ALLOW: allowed by write-tier-needs-user-oauth/m);
      assert.match(
        human.stdout,
        /^principal +oauth user .*scopes mcp mcp:tools; groups sre; expires in 3600s/m,
      );
      assert.match(
        human.stdout,
        /MATCH +allow +write-tier-needs-user-oauth +policies\/default\/20-write\.yaml:3 +when is true/,
      );
      assert.match(
        human.stdout,
        /no +deny +prod-api-keys-read-only +policies\/default\/40-prod\.yaml:3 +authMethods: "oauth" matches none of \["api_key"\]/,
      );
    });

    it("takes the tier from the operator's pin, else treats the tool as unknown: destructive", async () => {
      const config = write(
        "pins.yaml",
        stringify({
          environment: "prod",
          servers: {
            demo: {
              transport: "stdio",
              command: process.execPath,
              args: [DEMO_SERVER],
              tools: { add_note: { tier: "read", openWorld: false } },
            },
          },
        }),
      );
      const base = [
        "policy",
        "explain",
        "--config",
        config,
        "--principal",
        "method=api_key",
        "--server",
        "demo",
      ];
      const pinned = await json([...base, "--tool", "add_note"]);
      assert.equal((pinned.decision as Json).effect, "allow");
      assert.equal((pinned.input as { resource: Json }).resource.tier, "read");
      assert.equal((pinned.input as { resource: Json }).resource.tierSource, "operator");
      assert.equal((pinned.input as { context: Json }).context.environment, "prod");

      const unknown = await json([...base, "--tool", "never_listed"]);
      const resource = (unknown.input as { resource: Json }).resource;
      assert.equal(resource.tier, "destructive");
      assert.equal(resource.openWorld, true);
      assert.equal(resource.tierSource, "unknown");
      assert.equal((unknown.decision as Json).effect, "deny");
      assert.deepEqual((unknown.decision as Json).ruleIds, [
        "prod-api-keys-read-only",
        "prod-no-bare-key-writes",
      ]);

      const human = await runCli([...base, "--tool", "never_listed"]);
      assert.match(
        human.stdout,
        /tier destructive \(unknown: no tier given or pinned, so destructive and open-world/,
      );
    });

    it("evaluates when conditions over --args, and fails closed when an argument is missing", async () => {
      const policy = write(
        "paths.yaml",
        [
          "rules:",
          "  - id: files-under-tmp",
          "    effect: allow",
          "    match: { tools: [write_file] }",
          '    when: context.arguments.path.startsWith("/tmp/")',
          "  - id: never-etc",
          "    effect: deny",
          '    when: context.arguments.path.startsWith("/etc/")',
          "",
        ].join("\n"),
      );
      const base = [
        "policy",
        "explain",
        "--policy",
        policy,
        "--principal",
        "method=api_key",
        "--server",
        "fs",
        "--tool",
        "write_file",
      ];
      const tmp = await json([...base, "--args", '{"path":"/tmp/x"}']);
      assert.equal((tmp.decision as Json).effect, "allow");
      const etc = await json([...base, "--args", '{"path":"/etc/passwd"}']);
      assert.deepEqual((etc.decision as Json).ruleIds, ["never-etc"]);
      const missing = await json(base);
      assert.equal((missing.decision as Json).effect, "deny");
      const trace = missing.rules as Trace[];
      assert.match(trace[1]?.why ?? "", /^when failed .*counts as matching \(deny fails closed\)/);
      assert.match(trace[0]?.why ?? "", /^when failed .*counts as not matching/);
    });

    it("names the flag and exits 2 on bad input", async () => {
      const base = ["policy", "explain", "--server", "demo", "--tool", "x"];
      const cases: [string[], RegExp][] = [
        [[...base, "--principal", "method=oauth,knd=user"], /--principal: unknown key "knd"/],
        [[...base, "--principal", "method=password"], /--principal: method: /],
        [
          [...base, "--principal", "method=oauth,expiresIn=soon"],
          /--principal: expiresIn=soon: expected whole seconds/,
        ],
        [[...base, "--principal", "method=api_key", "--args", "[1]"], /--args: expected a JSON object/],
        [[...base, "--principal", "method=api_key", "--args", "{"], /--args: not valid JSON/],
        [
          [...base, "--principal", "method=api_key", "--tier", "huge"],
          /option '--tier <tier>' argument 'huge' is invalid/,
        ],
        [
          ["policy", "explain", "--principal", "method=api_key", "--server", "demo"],
          /--tool: required for tools\/call/,
        ],
        [
          ["policy", "explain", "--principal", "method=api_key", "--tool", "x"],
          /required option '--server <name>'/,
        ],
      ];
      for (const [args, message] of cases) {
        const r = await runCli(args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message);
      }
      const out = await json([...base, "--principal", "method=oauth,knd=user"], 2);
      assert.equal(out.error, "usage");
    });
  });

  describe("decision", () => {
    let gw: RunningGateway;
    before(async () => {
      gw = await startGateway({
        dir: tempDir(),
        config: {
          environment: "test",
          policy: { paths: [DEFAULT_POLICY_PACK] },
          servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
        },
      });
    });
    after(async () => {
      await gw.stop();
      cleanup(gw.dir);
    });

    it("finds the audit record of the decision id a refused client was given", async () => {
      const created = await gw.cli(["keys", "create", "--name", "ci", "--expires", "1d"]);
      const call = modern(
        1,
        "tools/call",
        { name: "add_note", arguments: { title: "t", body: "b" } },
        created.key as string,
      );
      const res = await rpc(gw.endpoint("demo"), call.body, call.headers);
      const error = res.json.error as { code: number; message: string; data: { decisionId: string } };
      assert.equal(error.code, -32040);
      const id = error.data.decisionId;
      assert.equal(error.message, `Forbidden by policy (decision ${id})`);

      // The audit log is written in batches: wait for the record.
      let found: { code: number; stdout: string; stderr: string } | undefined;
      for (let i = 0; i < 50; i++) {
        found = await runCli(["policy", "decision", id, "--config", gw.configFile, "--json"]);
        if (found.code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(found?.code, 0, found?.stderr);
      const record = JSON.parse(found?.stdout ?? "{}") as Json;
      const policy = await json(["policy", "check", "--config", gw.configFile]);
      assert.equal(record.decisionId, id);
      assert.equal(record.decision, "deny");
      assert.equal(record.principal, `key:${created.id}`);
      assert.equal(record.method, "api_key");
      assert.equal(record.credentialId, created.id);
      assert.equal(record.server, "demo");
      assert.equal(record.rpcMethod, "tools/call");
      assert.equal(record.tool, "add_note");
      assert.deepEqual(record.ruleIds, []);
      assert.equal(record.policyVersion, policy.version);
      assert.equal(record.reason, "no rule allows this");

      const human = await runCli(["policy", "decision", id, "--config", gw.configFile]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, new RegExp(`^decision +${id}: DENY`, "m"));
      assert.match(human.stdout, /^what +tools\/call demo add_note$/m);
      assert.match(human.stdout, /^reason +no rule allows this$/m);
    });

    it("explain decides with the tier the gateway pinned for the tool, and says so; --tier still overrides", async () => {
      const key = (await gw.cli(["keys", "create", "--name", "lister", "--expires", "1d"])).key as string;
      const list = modern(2, "tools/list", {}, key);
      assert.equal((await rpc(gw.endpoint("demo"), list.body, list.headers)).status, 200);
      // The gateway pins what it listed (written within ~50 ms): get_time is read-only by its annotations.
      for (let i = 0; i < 100; i++) {
        const pins = (await json(["tools", "list", "--config", gw.configFile])) as unknown as Json[];
        if (pins.some((t) => t.tool === "get_time")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const base = ["policy", "explain", "--config", gw.configFile, "--principal", "method=api_key"];
      const explained = await json([...base, "--server", "demo", "--tool", "get_time"]);
      const resource = (explained.input as { resource: Json }).resource;
      assert.deepEqual([resource.tier, resource.openWorld, resource.tierSource], ["read", false, "pinned"]);
      assert.equal((explained.decision as Json).effect, "allow");
      assert.deepEqual((explained.decision as Json).ruleIds, ["read-tier-tools"]);

      const human = await runCli([...base, "--server", "demo", "--tool", "get_time"]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(
        human.stdout,
        /^request +tools\/call on demo tool get_time; tier read \(from the annotations of the definition the gateway pinned, in the store\), open-world false$/m,
      );
      assert.match(human.stdout, /^tool pin +pin pinned, [0-9a-f]{12}$/m);

      const overridden = await json([
        ...base,
        "--server",
        "demo",
        "--tool",
        "get_time",
        "--tier",
        "destructive",
      ]);
      assert.equal((overridden.input as { resource: Json }).resource.tierSource, "given");
      assert.equal((overridden.decision as Json).effect, "deny");
      // A tool the gateway never listed stays unknown: destructive.
      const unknown = await json([...base, "--server", "demo", "--tool", "never_listed"]);
      assert.equal((unknown.input as { resource: Json }).resource.tierSource, "unknown");
      assert.equal((unknown.decision as Json).effect, "deny");
    });

    it("exits 2 for an id no record has", async () => {
      const r = await runCli(["policy", "decision", "nosuchdecision", "--config", gw.configFile]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /<decision-id> nosuchdecision: no audit record with this decision id/);
      const bad = await runCli(["policy", "decision", "no such id", "--config", gw.configFile]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /<decision-id> "no such id"/);
    });
  });
});
