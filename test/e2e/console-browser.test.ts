/**
 * The admin console in a real browser (playwright-core driving Debian's Chromium) against a
 * real gateway: the built-in authorization server's sign-in, the approvals queue deciding a
 * call an MCP SDK client holds open, a non-admin refused, the CSP and cookie flags on every
 * page, and a screenshot of each page under test-artifacts/console/.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { auditRecords } from "../helpers/audit.js";
import { cleanup, createKey, modern, type RunningGateway, rpc } from "../helpers/gateway.js";
import { jsonOf } from "../helpers/mcp.js";
import { userAccessToken } from "../helpers/oauthUser.js";
import { approvals, pendingApproval, startReviewGateway } from "../review/fixtures.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve("test-artifacts/console");
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const PAGES = [
  ["overview", "/console"],
  ["approvals", "/console/approvals"],
  ["keys", "/console/keys"],
  ["clients", "/console/clients"],
  ["users", "/console/users"],
  ["policies", "/console/policies"],
  ["audit", "/console/audit"],
] as const;

function skipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === "true") return false; // required in CI: fail loudly below
  const reason = `${CHROMIUM} is missing: the console browser tests are skipped (apt-get install -y chromium)`;
  console.log(`# ${reason}`);
  return reason;
}

interface User {
  username: string;
  password: string;
}

describe("admin console in a browser", { skip: skipReason() }, () => {
  let gw: RunningGateway;
  let browser: Browser;
  let key: string;
  let approver: User;
  let viewer: User;
  let approverContext: BrowserContext;
  let approverPage: Page;
  /** Content-Security-Policy violations Chromium reported on any page. */
  const violations: string[] = [];

  const addUser = async (name: string, groups?: string): Promise<User> => {
    const out = await gw.cli(["users", "add", name, ...(groups ? ["--groups", groups] : [])]);
    return { username: name, password: String(out.password) };
  };

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    return { context, page };
  }

  /** Opens the console and signs in on the authorization server's own page. */
  async function signIn(page: Page, user: User, screenshot?: string): Promise<number | undefined> {
    await page.goto(`${gw.url}/console`);
    await page.waitForURL(/\/oauth\/interaction\//);
    if (screenshot) await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    await page.getByLabel("Username").fill(user.username);
    await page.getByLabel("Password").fill(user.password);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().includes("/console/callback")),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    await page.waitForLoadState();
    return response.status();
  }

  async function v1Client(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    });
    const client = new Client({ name: "console-e2e-agent", version: "1.0.0" });
    await client.connect(transport);
    assert.equal(transport.protocolVersion, "2025-11-25");
    return { client, transport };
  }

  /** Adds a note in the agent's upstream notebook (2026-07-28 request) and returns its id. */
  async function addNote(): Promise<string> {
    const m = modern(1, "tools/call", { name: "add_note", arguments: { title: "keep", body: "me" } }, key);
    const r = await rpc(gw.endpoint("demo"), m.body, m.headers);
    assert.equal(r.status, 200, r.text);
    return jsonOf<{ note: { id: string } }>(r.json.result).note.id;
  }

  /** The agent's note ids: the upstream's own record of which deletes ran. */
  async function noteIds(): Promise<string[]> {
    const m = modern(2, "tools/call", { name: "search_notes", arguments: { query: "" } }, key);
    const r = await rpc(gw.endpoint("demo"), m.body, m.headers);
    assert.equal(r.status, 200, r.text);
    return jsonOf<{ notes: { id: string }[] }>(r.json.result).notes.map((n) => n.id);
  }

  /** Allow records of a delete_note call for this note in the audit trail. */
  async function allowedDeletes(note: string): Promise<number> {
    const records = await auditRecords(gw, { tool: "delete_note", decision: "allow" });
    return records.filter(
      (r) => r.rpcMethod === "tools/call" && JSON.stringify(r.arguments) === JSON.stringify({ id: note }),
    ).length;
  }

  /** Waits until the queue (reloaded by its own polling script) shows the approval. */
  async function queueRow(page: Page, id: string) {
    await page.goto(`${gw.url}/console/approvals`);
    const row = page.locator(`tr[data-approval="${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    return row;
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is required when CI=true`);
    mkdirSync(ARTIFACTS, { recursive: true });
    gw = await startReviewGateway({ environment: "dev", oauth: { mode: "builtin" } });
    ({ key } = await createKey(gw, "agent"));
    approver = await addUser("approver", "admins");
    viewer = await addUser("viewer", "staff");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    ({ context: approverContext, page: approverPage } = await newPage());
    assert.equal(await signIn(approverPage, approver, "sign-in.png"), 303);
    assert.equal(new URL(approverPage.url()).pathname, "/console");
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  it("an approver approves a held delete_note in the queue; the SDK client receives the result", async () => {
    const { client, transport } = await v1Client();
    // Opened before the call: the row must arrive by the page's own live updates.
    await approverPage.goto(`${gw.url}/console/approvals`);
    const opened = approverPage.url();
    try {
      const added = await client.callTool({ name: "add_note", arguments: { title: "t", body: "b" } });
      const note = JSON.parse((added.content as { text: string }[])[0]?.text as string).note.id as string;
      const pending = client.callTool({ name: "delete_note", arguments: { id: note } }, undefined, {
        onprogress: () => {},
        resetTimeoutOnProgress: true,
      });
      const approval = await pendingApproval(gw, "delete_note");
      const row = approverPage.locator(`tr[data-approval="${approval.id}"]`);
      await row.waitFor({ timeout: 15_000 });
      assert.equal(approverPage.url(), opened);
      assert.match(await row.innerText(), /delete_note/);
      assert.match(await row.innerText(), /agent/);
      await approverPage.screenshot({ path: join(ARTIFACTS, "approvals-pending.png"), fullPage: true });
      await row.getByRole("button", { name: /^Approve/ }).click();
      await approverPage
        .getByRole("status")
        .filter({ hasText: `Approved ${approval.id}` })
        .waitFor();
      const result = await pending;
      assert.deepEqual(JSON.parse((result.content as { text: string }[])[0]?.text as string), {
        deleted: note,
      });
      // Positive control for the denial below: an approved delete leaves its trace upstream and audited.
      assert.ok(!(await noteIds()).includes(note), "the approved delete ran upstream");
      assert.equal(await allowedDeletes(note), 1);
      const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
      const decided = list.find((a) => a.id === approval.id);
      assert.equal(decided?.status, "consumed");
      assert.equal(decided?.decidedBy, "approver");
      assert.equal(decided?.decidedVia, "console");
      await approverPage.screenshot({ path: join(ARTIFACTS, "approvals-decided.png"), fullPage: true });
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("an approver denies a held call; the SDK client gets a JSON-RPC error naming the approval, and it never runs", async () => {
    const { client, transport } = await v1Client();
    try {
      const note = await addNote();
      const pending = client
        .callTool({ name: "delete_note", arguments: { id: note } }, undefined, {
          resetTimeoutOnProgress: true,
        })
        .then(
          () => assert.fail("a denied call must not run"),
          (err: unknown) => err,
        );
      const approval = await pendingApproval(gw, "delete_note");
      // Whatever the page shows now, live updates bring the new approval into the queue.
      const row = approverPage.locator(`tr[data-approval="${approval.id}"]`);
      await row.waitFor({ timeout: 15_000 });
      await row.getByRole("button", { name: /^Deny/ }).click();
      await approverPage
        .getByRole("status")
        .filter({ hasText: `Denied ${approval.id}` })
        .waitFor();
      const err = await pending;
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32041);
      assert.match(err.message, new RegExp(String(approval.id)));
      assert.match(err.message, /denied/);
      assert.ok((await noteIds()).includes(note), "the denied delete never ran upstream");
      assert.equal(await allowedDeletes(note), 0, "no allow record for it");
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("a 2026-07-28 client gets input_required; approved in the console, its retry with the requestState runs", async () => {
    const note = await addNote();
    const params = (extra: Record<string, unknown> = {}) => ({
      name: "delete_note",
      arguments: { id: note },
      _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" },
      ...extra,
    });
    const first = modern(41, "tools/call", params(), key);
    const held = await rpc(gw.endpoint("demo"), first.body, first.headers);
    assert.equal(held.status, 200, held.text);
    const result = held.json.result as {
      resultType: string;
      requestState: string;
      _meta: Record<string, { approvalId: string }>;
    };
    assert.equal(result.resultType, "input_required", held.text);
    const approvalId = result._meta["portcullis/review"]?.approvalId as string;
    const row = await queueRow(approverPage, approvalId);
    await row.getByRole("button", { name: /^Approve/ }).click();
    await approverPage
      .getByRole("status")
      .filter({ hasText: `Approved ${approvalId}` })
      .waitFor();
    const retry = modern(42, "tools/call", params({ requestState: result.requestState }), key);
    const done = await rpc(gw.endpoint("demo"), retry.body, retry.headers);
    assert.equal(done.status, 200, done.text);
    const out = done.json.result as { resultType?: string; isError?: boolean; content: { text: string }[] };
    assert.notEqual(out.resultType, "input_required", done.text);
    assert.notEqual(out.isError, true, done.text);
    assert.deepEqual(JSON.parse(out.content[0]?.text ?? "null"), { deleted: note }, done.text);
    assert.ok(!(await noteIds()).includes(note), "the approved retry ran upstream");
    const decided = ((await approvals(gw, ["list"])) as Record<string, unknown>[]).find(
      (a) => a.id === approvalId,
    );
    assert.equal(decided?.status, "consumed");
    assert.equal(decided?.decidedVia, "console");
  });

  it("explains a policy decision from the policies page, rule by rule", async () => {
    await approverPage.goto(`${gw.url}/console/policies`);
    await approverPage.getByLabel("Principal (k=v,…)").fill("method=api_key,kind=service");
    await approverPage.getByLabel("Server").fill("demo");
    await approverPage.getByLabel("Tool, prompt or URI").fill("delete_note");
    await approverPage.getByLabel("Arguments (JSON)").fill('{"id":"n1"}');
    await approverPage.getByRole("button", { name: "Explain" }).click();
    const verdict = await approverPage.getByRole("status").first().innerText();
    assert.match(verdict, /Decision: REVIEW/, verdict);
    assert.match(await approverPage.locator("table").innerText(), /delete-note-needs-review/);
    await approverPage.screenshot({ path: join(ARTIFACTS, "policies-explain.png"), fullPage: true });
    await approverPage.getByLabel("Arguments (JSON)").fill("not json");
    await approverPage.getByRole("button", { name: "Explain" }).click();
    assert.match(await approverPage.getByRole("alert").innerText(), /args/);
  });

  it("refuses the console to a signed-in user outside the admin groups", async () => {
    const { context, page } = await newPage();
    try {
      assert.equal(await signIn(page, viewer), 403);
      await page.getByText("is not an administrator").waitFor();
      await page.screenshot({ path: join(ARTIFACTS, "forbidden.png"), fullPage: true });
      assert.equal((await context.cookies()).filter((c) => c.name === "portcullis_console").length, 0);
      const again = await page.goto(`${gw.url}/console/keys`);
      assert.equal(new URL(page.url()).pathname.startsWith("/console/keys"), false, "no session, no page");
      assert.notEqual(again?.status(), 200);
    } finally {
      await context.close();
    }
  });

  it("creates, rotates and revokes an API key; the secret is shown once", async () => {
    const page = approverPage;
    await page.goto(`${gw.url}/console/keys`);
    await page.getByLabel("Name").fill("console-made");
    await page.getByLabel(/^Expires in/).fill("7d");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.locator("#secret").innerText()).trim();
    assert.ok(secret.length > 20, secret);
    await page.screenshot({ path: join(ARTIFACTS, "keys-created.png"), fullPage: true });
    const keys = (await gw.cli(["keys", "list"])) as unknown as Record<string, unknown>[] | { keys: unknown };
    const rows = (Array.isArray(keys) ? keys : []) as Record<string, unknown>[];
    const made = rows.find((k) => k.name === "console-made");
    assert.ok(made, JSON.stringify(keys));
    await page.goto(`${gw.url}/console/keys`);
    assert.equal(await page.locator("#secret").count(), 0, "the secret is never shown again");
    await page.getByRole("button", { name: "Rotate key console-made" }).first().click();
    assert.ok((await page.locator("#secret").innerText()).trim() !== secret);
    await page.getByRole("button", { name: "Revoke key console-made" }).first().click();
    await page.getByRole("status").filter({ hasText: "revoked" }).waitFor();
  });

  it("adds a user with a generated password shown once", async () => {
    const page = approverPage;
    await page.goto(`${gw.url}/console/users`);
    await page.getByLabel("Username").fill("carol");
    await page.getByLabel(/^Groups/).fill("staff");
    await page.getByRole("button", { name: "Add user" }).click();
    assert.ok((await page.locator("#secret").innerText()).trim().length >= 16);
    await page.getByRole("cell", { name: "carol", exact: true }).waitFor();
  });

  it("refuses a POST without the CSRF token", async () => {
    const res = await approverContext.request.post(`${gw.url}/console/keys`, {
      form: { name: "csrf-less" },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 403);
    const list = (await gw.cli(["keys", "list"])) as unknown as Record<string, unknown>[];
    assert.equal(
      (Array.isArray(list) ? list : []).some((k) => k.name === "csrf-less"),
      false,
    );
  });

  it("serves every page with the strict CSP, no inline script or style, HttpOnly SameSite=Strict cookie; screenshots", async () => {
    const page = approverPage;
    for (const [name, path] of PAGES) {
      const res = await page.goto(`${gw.url}${path}`);
      assert.equal(res?.status(), 200, path);
      assert.equal(res?.headers()["content-security-policy"], CSP, path);
      assert.equal(res?.headers()["x-frame-options"], "DENY", path);
      const inline = await page.evaluate(() => ({
        scripts: document.querySelectorAll("script:not([src])").length,
        styles: document.querySelectorAll("style, [style]").length,
        handlers: [...document.querySelectorAll("*")].filter((e) =>
          [...e.attributes].some((a) => a.name.startsWith("on")),
        ).length,
      }));
      assert.deepEqual(inline, { scripts: 0, styles: 0, handlers: 0 }, path);
      if (name === "audit") {
        const status = await page.locator("[role=status], [role=alert]").first().innerText();
        assert.match(status, /Chain status: intact/, "the audit page shows the verified chain");
      }
      await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    }
    const cookies = await approverContext.cookies();
    const session = cookies.find((c) => c.name === "portcullis_console");
    assert.ok(session, JSON.stringify(cookies.map((c) => c.name)));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.ok(session.expires > 0 && session.expires * 1000 < Date.now() + 31 * 60_000, "short-lived");
    assert.deepEqual(violations, []);
  });

  it("refuses self-approval: an admin cannot approve a call they made themselves", async () => {
    const token = await userAccessToken(gw, { ...approver, server: "demo" });
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: "console-e2e-self", version: "1.0.0" });
    await client.connect(transport);
    const controller = new AbortController();
    const pending = client
      .callTool({ name: "delete_note", arguments: { id: "n-self" } }, undefined, {
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    try {
      const approval = await pendingApproval(gw, "delete_note");
      const row = await queueRow(approverPage, String(approval.id));
      const [response] = await Promise.all([
        approverPage.waitForResponse((r) => r.request().method() === "POST"),
        row.getByRole("button", { name: /^Approve/ }).click(),
      ]);
      assert.equal(response.status(), 409);
      await approverPage.getByRole("alert").filter({ hasText: "Not decided" }).waitFor();
      const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
      assert.equal(list.find((a) => a.id === approval.id)?.status, "pending");
    } finally {
      controller.abort();
      await pending;
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("is keyboard-usable: Tab reaches the skip link, the sections and the sign-out button", async () => {
    const page = approverPage;
    await page.goto(`${gw.url}/console`);
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Overview");
    for (let i = 0; i < 2; i++) await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "API keys");
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/console\/keys$/);
  });
});
