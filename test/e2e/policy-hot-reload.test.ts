/**
 * Policy hot reload as an operator lives it: edit the policy file of a running gateway and
 * the new rules decide the next requests, with the new policy version in the audit log; save
 * a broken file and the gateway keeps the last valid policy, says where the error is
 * (file:line) and shows it in /metrics until the file is fixed.
 */
import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { openStore } from "../../src/store/open.js";
import type { StoredAuditRecord } from "../../src/store/types.js";
import {
  cleanup,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";

const DISCOVERY = `  - id: allow-discovery
    effect: allow
    match:
      methods: [initialize, ping, server/discover, tools/list]
`;

/** Version 1: only get_time may be called. */
const V1 = `rules:
${DISCOVERY}  - id: allow-clock
    effect: allow
    match:
      methods: [tools/call]
      tools: [get_time]
`;

/** Version 2: echo too. */
const V2 = `rules:
${DISCOVERY}  - id: allow-clock-and-echo
    effect: allow
    match:
      methods: [tools/call]
      tools: [get_time, echo]
`;

/** Broken: would allow every call, but `permit` is no effect. */
const BROKEN = `rules:
${DISCOVERY}  - id: allow-everything
    effect: permit
`;
const BROKEN_LINE = BROKEN.split("\n").findIndex((l) => l.includes("effect: permit")) + 1;

type RpcError = { code: number; data?: { decisionId?: string } };

describe("policy hot reload", () => {
  let dir: string;
  let policyFile: string;
  let gw: RunningGateway;
  let key: string;
  let rpcId = 1;

  /** Saves the file as editors do: write a temporary file, then rename it over the policy. */
  const save = (text: string) => {
    writeFileSync(`${policyFile}.tmp`, text);
    renameSync(`${policyFile}.tmp`, policyFile);
  };

  const callTool = async (name: string, args: Record<string, unknown>) => {
    const { body, headers } = modern(rpcId++, "tools/call", { name, arguments: args }, key);
    return rpc(gw.endpoint("demo"), body, headers);
  };

  const versionOf = async (text: string): Promise<string> => {
    const file = join(dir, "version-of.yaml");
    writeFileSync(file, text);
    const r = await runCli(["policy", "check", file, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { version: string }).version;
  };

  /** Audit records of tools/call decisions for one tool, newest first. */
  const decisions = async (tool: string): Promise<StoredAuditRecord[]> => {
    await sleep(200); // the audit log is group-committed within ~50 ms
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      return (await store.listAudit({ limit: 200 }))
        .filter((r) => r.rpcMethod === "tools/call" && r.tool === tool)
        .sort((a, b) => b.seq - a.seq);
    } finally {
      await store.close();
    }
  };

  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} in /metrics`);
    return Number(line.split(" ")[1]);
  };

  before(async () => {
    dir = tempDir("portcullis-hot-reload-");
    policyFile = join(dir, "policy.yaml");
    writeFileSync(policyFile, V1);
    gw = await startGateway({
      config: {
        policy: { paths: [policyFile] },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "reloader"])).key as string;
    const { body, headers } = modern(rpcId++, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("demo"), body, headers)).status, 200);
  });
  after(async () => {
    await gw?.stop();
    if (dir) cleanup(dir);
  });

  it("applies a changed policy file to the next requests, and audits them with the new version", async () => {
    const [v1, v2] = [await versionOf(V1), await versionOf(V2)];
    assert.notEqual(v1, v2);
    const refused = await callTool("echo", { text: "before" });
    assert.equal(refused.status, 200, refused.text);
    assert.equal((refused.json.error as RpcError).code, -32040);
    assert.equal((await decisions("echo"))[0]?.policyVersion, v1);

    save(V2);
    let res = refused;
    for (
      const until = Date.now() + 5_000;
      res.json.result === undefined && Date.now() < until;
      await sleep(100)
    )
      res = await callTool("echo", { text: "after" });
    assert.equal(res.status, 200, `the new rule did not apply within 5 s: ${res.text}`);
    assert.deepEqual((res.json.result as { content: unknown }).content, [{ type: "text", text: "after" }]);

    const [latest] = await decisions("echo");
    assert.equal(latest?.decision, "allow");
    assert.equal(latest?.policyVersion, v2);
    assert.deepEqual(latest?.ruleIds, ["allow-clock-and-echo"]);
    assert.ok(
      gw.logs.some((l) => l.event === "policy.reloaded" && l.version === v2),
      "the reload is logged with its version",
    );
    assert.equal(await metric("portcullis_policy_files_valid"), 1);
  });

  it("keeps the last valid policy when a change does not compile, and reports file:line in the log and /metrics", async () => {
    const v2 = await versionOf(V2);
    save(BROKEN);
    let refusedLog: Record<string, unknown> | undefined;
    for (const until = Date.now() + 5_000; !refusedLog && Date.now() < until; await sleep(50))
      refusedLog = gw.logs.find((l) => l.event === "policy.reload_refused");
    assert.ok(refusedLog, "policy.reload_refused is logged");
    assert.equal(refusedLog.file, policyFile);
    assert.equal(refusedLog.line, BROKEN_LINE);
    assert.equal(refusedLog.level, 50, "logged as an error");
    assert.match(
      String(refusedLog.msg),
      new RegExp(`${policyFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${BROKEN_LINE}`),
    );
    assert.equal(await metric("portcullis_policy_reload_errors_total"), 1);
    assert.equal(await metric("portcullis_policy_files_valid"), 0);

    // Version 2 is still in force: echo works, and the broken file's allow-everything does not.
    const echo = await callTool("echo", { text: "still v2" });
    assert.equal(echo.status, 200, echo.text);
    assert.equal((await decisions("echo"))[0]?.policyVersion, v2);
    const write = await callTool("add_note", { title: "t", body: "b" });
    assert.equal((write.json.error as RpcError).code, -32040, write.text);
    assert.equal((await decisions("add_note"))[0]?.policyVersion, v2);

    // Fixing the file clears the alarm.
    save(V1);
    let valid = 0;
    for (const until = Date.now() + 5_000; valid !== 1 && Date.now() < until; await sleep(100))
      valid = await metric("portcullis_policy_files_valid");
    assert.equal(valid, 1, "files_valid returns to 1 once the file compiles");
    assert.equal(await metric("portcullis_policy_reload_errors_total"), 1);
  });

  it("clears the invalid-policy alarm when a broken file is reverted to the policy in force", async () => {
    // The usual fix for a broken save is `git checkout policy.yaml`: the file returns to
    // exactly the policy the gateway runs, so the version does not change.
    save(BROKEN);
    for (const until = Date.now() + 5_000; Date.now() < until; await sleep(50))
      if ((await metric("portcullis_policy_files_valid")) === 0) break;
    assert.equal(await metric("portcullis_policy_files_valid"), 0);
    save(V1);
    let valid = 0;
    for (const until = Date.now() + 5_000; valid !== 1 && Date.now() < until; await sleep(100))
      valid = await metric("portcullis_policy_files_valid");
    assert.equal(valid, 1, "portcullis_policy_files_valid stays 0 although the files on disk compile");
  });

  it("names a misspelt key (docs/policy.md's `efect:`) and the key it meant in the reload error", async () => {
    const typo = V1.replace("allow-clock\n    effect: allow", "allow-clock\n    efect: allow");
    assert.notEqual(typo, V1);
    const line = typo.split("\n").findIndex((l) => l.includes("efect:")) + 1;
    save(typo);
    let refused: Record<string, unknown> | undefined;
    for (const until = Date.now() + 5_000; !refused && Date.now() < until; await sleep(50))
      refused = gw.logs.find(
        (l) => l.event === "policy.reload_refused" && String(l.detail).includes("efect"),
      );
    assert.ok(refused, "the refused reload is logged");
    assert.equal(refused.line, line);
    assert.equal(
      refused.detail,
      "unknown key 'efect' in rule 'allow-clock': did you mean 'effect'? (allowed: id, description, effect, match, when, review)",
    );
    assert.match(
      String(refused.msg),
      new RegExp(`policy\\.yaml:${line}: unknown key 'efect' in rule 'allow-clock'`),
    );
    save(V1);
    let valid = 0;
    for (const until = Date.now() + 5_000; valid !== 1 && Date.now() < until; await sleep(100))
      valid = await metric("portcullis_policy_files_valid");
    assert.equal(valid, 1);
  });
});
