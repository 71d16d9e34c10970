/**
 * `portcullis users set-groups|reset-password|disable|enable|consents|revoke-consent` against a
 * running gateway with the built-in authorization server: each change takes effect where a
 * user would notice it (sign-in, tokens at the gateway, the consent page), is audited with the
 * target user, and bad input exits 2 with a message.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { auditRecords } from "../helpers/audit.js";
import {
  CLI,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
} from "../helpers/gateway.js";
import { addUser, userAccessToken } from "../helpers/oauthUser.js";
import { waitFor } from "../helpers/wait.js";

/** `portcullis <args>` with `input` on standard input (a password never goes on the command line). */
function cliWithStdin(
  args: string[],
  input: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe("users CLI: editing accounts of the built-in authorization server", () => {
  let gw: RunningGateway;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
  });

  const listTools = async (token: string) => {
    const call = modern(1, "tools/list", {}, token);
    return (await rpc(gw.endpoint("demo"), call.body, call.headers)).status;
  };
  const signInWorks = async (username: string, password: string) =>
    userAccessToken(gw, { username, password, server: "demo" }).then(
      () => true,
      () => false,
    );

  it("set-groups replaces the groups, prints them as JSON and audits the target user", async () => {
    await addUser(gw, "grace");
    const out = await gw.cli(["users", "set-groups", "grace", "staff, oncall"]);
    assert.deepEqual(out.groups, ["staff", "oncall"]);
    const listed = (await gw.cli(["users", "list"])) as unknown as { username: string; groups: string[] }[];
    assert.deepEqual(listed.find((u) => u.username === "grace")?.groups, ["staff", "oncall"]);
    const records = await auditRecords(gw, { principalContains: ["operator:"] });
    const rec = records.find((r) => r.detail?.event === "user.groups_set");
    assert.ok(rec, "a user.groups_set record");
    assert.equal(rec.detail?.username, "grace");
    assert.deepEqual(rec.detail?.groups, ["staff", "oncall"]);
    assert.deepEqual(rec.detail?.previousGroups, []);
    assert.equal(rec.method, "cli");
  });

  it("reset-password generates a new password shown once: the old one is refused, the new one signs in", async () => {
    const user = await addUser(gw, "henry");
    const out = await gw.cli(["users", "reset-password", "henry"]);
    const fresh = String(out.password);
    assert.ok(fresh.length >= 16 && fresh !== user.password);
    assert.equal(await signInWorks("henry", user.password), false);
    assert.equal(await signInWorks("henry", fresh), true);
    const rec = (await auditRecords(gw)).find((r) => r.detail?.event === "user.password_reset");
    assert.equal(rec?.detail?.username, "henry");
    assert.ok(!JSON.stringify(rec).includes(fresh), "the password is not in the audit trail");
  });

  it("reset-password --password-stdin takes the password from standard input, never from argv, and prints none", async () => {
    await addUser(gw, "irene");
    const r = await cliWithStdin(
      ["users", "reset-password", "irene", "--password-stdin", "--config", gw.configFile, "--json"],
      "correct horse battery staple\n",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).password, undefined);
    assert.equal(await signInWorks("irene", "correct horse battery staple"), true);
    const short = await cliWithStdin(
      ["users", "reset-password", "irene", "--password-stdin", "--config", gw.configFile],
      "short\n",
    );
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 8 characters/);
  });

  it("disable refuses sign-in and revokes the user's live tokens at the gateway; enable lets them sign in again", async () => {
    const user = await addUser(gw, "jack");
    const token = await userAccessToken(gw, { ...user, server: "demo" });
    assert.equal(await listTools(token), 200);
    const out = await gw.cli(["users", "disable", "jack"]);
    assert.equal(out.changed, true);
    assert.ok(Number(out.grantsRevoked) >= 1, "the grant behind the token was revoked");
    assert.ok(out.disabledAt);
    await waitFor("the token to be refused", async () => (await listTools(token)) === 401);
    assert.equal(await signInWorks("jack", user.password), false);
    const again = await gw.cli(["users", "disable", "jack"]);
    assert.equal(again.changed, false);
    const enabled = await gw.cli(["users", "enable", "jack"]);
    assert.equal(enabled.changed, true);
    assert.equal(enabled.disabledAt, null);
    assert.equal(await signInWorks("jack", user.password), true);
    assert.equal(await listTools(token), 401, "a revoked token stays revoked after enable");
    const events = async () =>
      (await auditRecords(gw)).filter((r) => r.detail?.username === "jack").map((r) => r.detail?.event);
    // The sign-in records are written by the gateway's audit writer, which may not have flushed yet.
    await waitFor("the last sign-in's records", async () => (await events()).length >= 7);
    // The management actions, and the sign-ins around them: the refused one while disabled is recorded too.
    assert.deepEqual(await events(), [
      "sign_in.succeeded",
      "consent.granted",
      "user.disabled",
      "sign_in.failed",
      "user.enabled",
      "sign_in.succeeded",
      "consent.granted",
    ]);
  });

  it("consents lists the client by name; revoke-consent revokes its tokens and the next sign-in asks again", async () => {
    const user = await addUser(gw, "kate");
    const token = await userAccessToken(gw, { ...user, server: "demo" });
    const consents = (await gw.cli(["users", "consents", "kate"])) as unknown as {
      clientId: string;
      clientName: string;
    }[];
    assert.equal(consents.length, 1);
    const [consent] = consents;
    assert.equal(consent?.clientName, "portcullis e2e agent");
    const out = await gw.cli(["users", "revoke-consent", "kate", String(consent?.clientId)]);
    assert.equal(out.revoked, true);
    await waitFor("the token to be refused", async () => (await listTools(token)) === 401);
    assert.deepEqual(await gw.cli(["users", "consents", "kate"]), []);
    const rec = (await auditRecords(gw)).find((r) => r.detail?.event === "user.consent_revoked");
    assert.equal(rec?.detail?.username, "kate");
    assert.equal(rec?.detail?.clientId, consent?.clientId);
    // Nothing left to revoke: a usage error, not a silent success.
    const r = await runCli([
      "users",
      "revoke-consent",
      "kate",
      String(consent?.clientId),
      "--config",
      gw.configFile,
    ]);
    assert.equal(r.code, 2);
  });

  it("remove revokes the removed user's live tokens at the gateway", async () => {
    const user = await addUser(gw, "liam");
    const token = await userAccessToken(gw, { ...user, server: "demo" });
    assert.equal(await listTools(token), 200);
    assert.equal((await gw.cli(["users", "remove", "liam"])).removed, true);
    await waitFor("the token to be refused", async () => (await listTools(token)) === 401);
  });

  it("an unknown user exits 2 naming the user, for every edit command, with --help describing each", async () => {
    for (const args of [
      ["set-groups", "nobody", "a"],
      ["reset-password", "nobody"],
      ["disable", "nobody"],
      ["enable", "nobody"],
      ["consents", "nobody"],
      ["revoke-consent", "nobody", "client"],
    ]) {
      const r = await runCli(["users", ...args, "--config", gw.configFile, "--json"]);
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /no user named nobody/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      const help = await runCli(["users", args[0] as string, "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--json/);
    }
  });
});
