/**
 * Attacks on separation of duties in runtime review (docs/review.md "Approvers"): an approver
 * approving a held call made with an API key or OAuth machine client she created herself
 * (console, CLI), and a caller approving her own call from the CLI by typing another name. Each refusal is checked where it
 * matters — the upstream's own log of calls never shows the held call, and the audit trail
 * records the refusal — beside a positive control: another approver's approval forwards the
 * very same call once.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { openStore } from "../../src/store/open.js";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import { type ConsoleBrowser, signInToConsole } from "../helpers/consoleSession.js";
import {
  cleanup,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";
import { addUser, userAccessToken } from "../helpers/oauthUser.js";

const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const TOOLS: ToolFile = {
  tools: [
    {
      name: "delete_note",
      description: "Deletes a note.",
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
  ],
};
const POLICY = {
  rules: [
    { id: "allow-the-rest", effect: "allow" },
    {
      id: "delete-needs-review",
      effect: "review",
      match: { methods: ["tools/call"], servers: ["notes"], tools: ["delete_note"] },
      review: { timeoutSeconds: 120 },
    },
  ],
};
const IS_ROOT = process.getuid?.() === 0;

interface Held {
  approvalId: string;
  state: string;
  note: string;
}

describe("separation of duties: no approver decides a call of their own credential", {
  skip: IS_ROOT ? false : "acting as several OS accounts needs root (SUDO_USER is trusted from root only)",
}, () => {
  let dir: string;
  let gw: RunningGateway;
  let callsFile: string;
  let alice: ConsoleBrowser;
  let bob: ConsoleBrowser;
  let nextNote = 0;

  /** The notes the upstream was asked to delete, from its own log of calls. */
  const deletedUpstream = (): string[] =>
    (existsSync(callsFile) ? readFileSync(callsFile, "utf8").split("\n").filter(Boolean) : [])
      .map((l) => JSON.parse(l) as { name: string; arguments: { id?: string } })
      .filter((c) => c.name === "delete_note")
      .map((c) => String(c.arguments.id));

  const call = (credential: string, note: string, requestState?: string) => {
    const m = modern(
      nextNote++,
      "tools/call",
      {
        name: "delete_note",
        arguments: { id: note },
        ...(requestState === undefined ? {} : { requestState }),
      },
      credential,
    );
    return rpc(gw.endpoint("notes"), m.body, m.headers);
  };

  /** A delete_note call held for review. */
  async function held(credential: string): Promise<Held> {
    const note = `note-${nextNote}`;
    const r = await call(credential, note);
    const result = r.json.result as Record<string, unknown> | undefined;
    assert.equal(result?.resultType, "input_required", r.text);
    const meta = (result?._meta as Record<string, { approvalId: string }>)["portcullis/review"];
    return { approvalId: String(meta?.approvalId), state: String(result?.requestState), note };
  }

  /** The retry of a held call: forwarded once approved, still input_required otherwise. */
  async function retry(credential: string, h: Held) {
    const r = await call(credential, h.note, h.state);
    const result = r.json.result as Record<string, unknown> | undefined;
    return { forwarded: result !== undefined && result.resultType !== "input_required", text: r.text };
  }

  /** Audit events recorded for an approval. */
  async function events(approvalId: string): Promise<string[]> {
    await sleep(200);
    const store = await openStore(join(gw.dir, "data", "portcullis.db"));
    try {
      return (await store.listAudit({ limit: 500 }))
        .filter((r) => r.detail?.approvalId === approvalId)
        .map((r) => String(r.detail?.event));
    } finally {
      await store.close();
    }
  }

  /** `portcullis approvals …` run by the OS account `operator` (as sudo would), env added. */
  const approvalsAs = (operator: string, args: string[], env: Record<string, string> = {}) =>
    runCli(["approvals", ...args, "--config", gw.configFile, "--json"], { SUDO_USER: operator, ...env });
  const keyCreatedBy = async (operator: string, name: string): Promise<string> => {
    const r = await runCli(["keys", "create", "--name", name, "--config", gw.configFile, "--json"], {
      SUDO_USER: operator,
    });
    assert.equal(r.code, 0, r.stderr);
    return String((JSON.parse(r.stdout) as { key: string }).key);
  };

  before(async () => {
    dir = tempDir("portcullis-sod-");
    const toolsFile = join(dir, "tools.json");
    const policyFile = join(dir, "policy.yaml");
    callsFile = join(dir, "calls.jsonl");
    writeFileSync(toolsFile, JSON.stringify(TOOLS));
    writeFileSync(policyFile, stringify(POLICY));
    gw = await startGateway({
      dir,
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        policy: { paths: [policyFile] },
        review: { retryHoldSeconds: 1 },
        servers: {
          notes: {
            transport: "stdio",
            command: process.execPath,
            args: [MUTABLE_SERVER, toolsFile, "--calls", callsFile],
          },
        },
      },
    });
    const aliceUser = await addUserIn(gw, "alice", "admins");
    const bobUser = await addUserIn(gw, "bob", "admins");
    alice = await signInToConsole(gw, aliceUser);
    bob = await signInToConsole(gw, bobUser);
  });
  after(async () => {
    await gw?.stop();
    cleanup(dir);
  });

  it("refuses a console approval by the admin who created the caller's key in the console", async () => {
    const created = await alice.post(
      "/console/keys",
      { name: "alice-agent", servers: "notes" },
      "/console/keys",
    );
    assert.equal(created.status, 201, created.html);
    const key = /<code class="secret" id="secret">([^<]+)<\/code>/.exec(created.html)?.[1];
    assert.ok(key, "the new key is shown once");
    const h = await held(key);

    const refused = await alice.post(`/console/approvals/${h.approvalId}/approve`, {}, "/console/approvals");
    assert.equal(refused.status, 409, refused.html);
    assert.match(refused.html, /created the credential behind/);
    assert.equal((await retry(key, h)).forwarded, false, "still held");
    assert.deepEqual(deletedUpstream(), [], "the held call never reached the upstream");
    assert.ok((await events(h.approvalId)).includes("review.owner_approval_refused"));

    // Positive control: another admin approves the same call, which then runs exactly once.
    const approved = await bob.post(`/console/approvals/${h.approvalId}/approve`, {}, "/console/approvals");
    assert.equal(approved.status, 200, approved.html);
    const again = await retry(key, h);
    assert.ok(again.forwarded, again.text);
    assert.deepEqual(deletedUpstream(), [h.note]);
  });

  it("refuses a CLI approval by the operator who created the caller's key, whatever name is typed", async () => {
    const before = deletedUpstream();
    const key = await keyCreatedBy("mallory", "mallory-agent");
    const h = await held(key);

    // The approver is the OS account: USER, LOGNAME and --by are the caller's to type, so ignored or refused.
    const typed = await approvalsAs("mallory", ["approve", h.approvalId, "--by", "bob"]);
    assert.notEqual(typed.code, 0, "--by is no longer an identity");
    const spoofed = await approvalsAs("mallory", ["approve", h.approvalId], { USER: "bob", LOGNAME: "bob" });
    assert.equal(spoofed.code, 2, spoofed.stdout);
    assert.match(spoofed.stdout + spoofed.stderr, /mallory created the credential behind/);
    assert.equal((await retry(key, h)).forwarded, false);
    assert.deepEqual(deletedUpstream(), before, "the held call never reached the upstream");
    assert.ok((await events(h.approvalId)).includes("review.owner_approval_refused"));

    // Positive control: another operator's approval forwards it once, recorded under their account.
    const ok = await approvalsAs("carol", ["approve", h.approvalId]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { decidedBy: string }).decidedBy, "carol");
    assert.ok((await retry(key, h)).forwarded);
    assert.deepEqual(deletedUpstream(), [...before, h.note]);
  });

  it("refuses a CLI approval by the operator who created the caller's OAuth machine client", async () => {
    const before = deletedUpstream();
    const r = await runCli(
      [
        "clients",
        "create",
        "--name",
        "nightly-cleanup",
        "--auth",
        "client_secret_basic",
        "--servers",
        "notes",
      ].concat(["--config", gw.configFile, "--json"]),
      { SUDO_USER: "mallory" },
    );
    assert.equal(r.code, 0, r.stderr);
    const client = JSON.parse(r.stdout) as { clientId: string; clientSecret: string };
    const res = await fetch(`${gw.url}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ grant_type: "client_credentials", resource: gw.endpoint("notes") }),
    });
    const token = ((await res.json()) as { access_token: string }).access_token;
    assert.equal(res.status, 200);
    const h = await held(token);

    const owner = await approvalsAs("mallory", ["approve", h.approvalId]);
    assert.equal(owner.code, 2, owner.stdout);
    assert.match(owner.stdout + owner.stderr, /mallory created the credential behind/);
    assert.equal((await retry(token, h)).forwarded, false);
    assert.deepEqual(deletedUpstream(), before, "the held call never reached the upstream");
    assert.ok((await events(h.approvalId)).includes("review.owner_approval_refused"));

    const ok = await approvalsAs("carol", ["approve", h.approvalId]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.ok((await retry(token, h)).forwarded);
    assert.deepEqual(deletedUpstream(), [...before, h.note]);
  });

  it("refuses a CLI approval of an OAuth user's own call by her own OS account", async () => {
    const before = deletedUpstream();
    const dana = await addUserIn(gw, "dana");
    const token = await userAccessToken(gw, { ...dana, server: "notes" });
    const h = await held(token);

    const self = await approvalsAs("dana", ["approve", h.approvalId], { USER: "erin" });
    assert.equal(self.code, 2, self.stdout);
    assert.match(self.stdout + self.stderr, /can never decide their own call/);
    assert.equal((await retry(token, h)).forwarded, false);
    assert.deepEqual(deletedUpstream(), before, "the held call never reached the upstream");
    assert.ok((await events(h.approvalId)).includes("review.self_approval_refused"));

    const ok = await approvalsAs("erin", ["approve", h.approvalId]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.ok((await retry(token, h)).forwarded);
    assert.deepEqual(deletedUpstream(), [...before, h.note]);
  });
});

async function addUserIn(gw: RunningGateway, name: string, groups?: string) {
  if (groups === undefined) return addUser(gw, name);
  const out = await gw.cli(["users", "add", name, "--groups", groups]);
  return { username: name, password: String(out.password) };
}
