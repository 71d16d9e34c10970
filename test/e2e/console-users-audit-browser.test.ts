/**
 * The console's user editing, consent revocation, paged audit search with record detail, and
 * people shown by name, in a real browser (playwright-core driving Debian's Chromium) against a
 * real gateway with the built-in authorization server. Each change is checked where the user
 * would notice it: a sign-in with the new password, a refused sign-in, a token refused at the
 * gateway.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { auditRecords } from "../helpers/audit.js";
import { chromiumSkipReason, consoleSignIn, launchChromium } from "../helpers/chromium.js";
import {
  createKey,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
} from "../helpers/gateway.js";
import { userAccessToken } from "../helpers/oauthUser.js";
import { waitFor } from "../helpers/wait.js";

const ARTIFACTS = resolve("test-artifacts/console");

interface User {
  username: string;
  password: string;
}

describe("console: users, consents, audit pages, names", {
  skip: chromiumSkipReason("the console browser tests"),
}, () => {
  let gw: RunningGateway;
  let browser: Browser;
  let admin: User;
  let adminContext: BrowserContext;
  let page: Page;
  const contexts: BrowserContext[] = [];

  const addUser = async (name: string, groups?: string): Promise<User> => {
    const out = await gw.cli(["users", "add", name, ...(groups ? ["--groups", groups] : [])]);
    return { username: name, password: String(out.password) };
  };
  const userId = async (name: string) => {
    const list = (await gw.cli(["users", "list"])) as unknown as { id: string; username: string }[];
    return list.find((u) => u.username === name)?.id as string;
  };
  const listTools = async (token: string) => {
    const call = modern(1, "tools/list", {}, token);
    return (await rpc(gw.endpoint("demo"), call.body, call.headers)).status;
  };
  /** A fresh browser (no cookies) signing in to the console. */
  const freshSignIn = async (user: User) => {
    const context = await browser.newContext();
    contexts.push(context);
    const p = await context.newPage();
    return { status: await consoleSignIn(p, gw.url, user), page: p };
  };
  const openUser = async (name: string) => {
    await page.goto(`${gw.url}/console/users`);
    await page.getByRole("link", { name, exact: true }).click();
    await page.getByRole("heading", { name: `User ${name}` }).waitFor();
  };

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    admin = await addUser("root-admin", "admins");
    browser = await launchChromium();
    adminContext = await browser.newContext({ viewport: { width: 1366, height: 800 } });
    page = await adminContext.newPage();
    assert.equal(await consoleSignIn(page, gw.url, admin), 303);
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await gw?.stop();
  });

  it("edits a user's groups: a staff member made an admin can then use the console", async () => {
    const dana = await addUser("dana", "staff");
    assert.equal((await freshSignIn(dana)).status, 403, "not an admin yet");
    await openUser("dana");
    await page.getByLabel(/^Groups/).fill("staff, admins");
    await page.getByRole("button", { name: "Save groups" }).click();
    await page.getByRole("status").filter({ hasText: "Groups of dana set to staff, admins." }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "user-edit.png"), fullPage: true });
    const listed = (await gw.cli(["users", "list"])) as unknown as { username: string; groups: string[] }[];
    assert.deepEqual(listed.find((u) => u.username === "dana")?.groups, ["staff", "admins"]);
    assert.equal((await freshSignIn(dana)).status, 303, "an admin now");
    const rec = (await auditRecords(gw)).find((r) => r.detail?.event === "console.user_groups_set");
    assert.equal(rec?.detail?.username, "dana");
    assert.equal(rec?.method, "console");
    assert.match(
      String(rec?.principal),
      new RegExp(`#${await userId("root-admin")}$`),
      "who made the change",
    );
  });

  it("resets a password: the new one is shown once and signs in, the old one no longer does", async () => {
    const evan = await addUser("evan", "admins");
    await openUser("evan");
    await page.getByRole("button", { name: "Reset password of evan" }).click();
    const fresh = (await page.locator("#secret").innerText()).trim();
    assert.ok(fresh.length >= 16 && fresh !== evan.password);
    await openUser("evan");
    assert.equal(await page.locator("#secret").count(), 0, "shown once, not on the next visit");
    assert.equal((await freshSignIn(evan)).status, null, "the old password is refused");
    assert.equal((await freshSignIn({ username: "evan", password: fresh })).status, 303);
  });

  it("disables a user: their sign-in is refused and their live token stops; enable lets them back in", async () => {
    const fay = await addUser("fay", "admins");
    const token = await userAccessToken(gw, { ...fay, server: "demo" });
    assert.equal(await listTools(token), 200);
    const signedIn = await freshSignIn(fay);
    assert.equal(signedIn.status, 303);
    await openUser("fay");
    await page.getByRole("button", { name: "Disable fay" }).click();
    await page.getByRole("status").filter({ hasText: "fay disabled" }).waitFor();
    assert.match(await page.locator("[data-status]").innerText(), /disabled since/);
    await waitFor("fay's token to be refused", async () => (await listTools(token)) === 401);
    assert.equal((await freshSignIn(fay)).status, null, "sign-in refused");
    // Her console session, already open, ends at the next page.
    const r = await signedIn.page.goto(`${gw.url}/console/users`);
    assert.equal(r?.status(), 403);
    await page.getByRole("button", { name: "Enable fay" }).click();
    await page.getByRole("status").filter({ hasText: "fay enabled." }).waitFor();
    assert.equal((await freshSignIn(fay)).status, 303);
  });

  it("refuses to let an administrator disable themselves or drop their own admin group", async () => {
    await openUser("root-admin");
    assert.equal(await page.getByRole("button", { name: "Disable root-admin" }).count(), 0);
    await page.getByLabel(/^Groups/).fill("staff");
    await page.getByRole("button", { name: "Save groups" }).click();
    await page.getByRole("alert").filter({ hasText: "cannot remove yourself" }).waitFor();
    const listed = (await gw.cli(["users", "list"])) as unknown as { username: string; groups: string[] }[];
    assert.deepEqual(listed.find((u) => u.username === "root-admin")?.groups, ["admins"]);
  });

  it("revokes a consent shown by the client's name: the client's token for that user stops", async () => {
    const gus = await addUser("gus");
    const token = await userAccessToken(gw, { ...gus, server: "demo" });
    assert.equal(await listTools(token), 200);
    await openUser("gus");
    const row = page.locator("tr[data-consent]");
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), /portcullis e2e agent/);
    await page.screenshot({ path: join(ARTIFACTS, "user-consents.png"), fullPage: true });
    await row.getByRole("button", { name: "Revoke consent to portcullis e2e agent" }).click();
    await page.getByRole("status").filter({ hasText: "Consent of gus" }).waitFor();
    assert.equal(await page.locator("tr[data-consent]").count(), 0);
    await waitFor("gus's token to be refused", async () => (await listTools(token)) === 401);
    const rec = (await auditRecords(gw)).find((r) => r.detail?.event === "console.user_consent_revoked");
    assert.equal(rec?.detail?.username, "gus");
  });

  it("pages through audit results by sequence number and opens a record's detail by decision id", async () => {
    const { key } = await createKey(gw, "pager");
    const demoRecords = async () => (await auditRecords(gw)).filter((r) => r.server === "demo").length;
    const before = await demoRecords();
    for (let i = 0; i < 12; i++) assert.equal(await listTools(key), 200);
    // The gateway's audit writer commits in batches: page once all twelve are stored.
    await waitFor("the twelve calls' records", async () => (await demoRecords()) >= before + 12);
    await page.goto(`${gw.url}/console/audit?server=demo&size=5`);
    const seqs = async () =>
      (
        await page.locator("tr[data-seq]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-seq")))
      ).map(Number);
    const first = await seqs();
    assert.equal(first.length, 5);
    assert.deepEqual(
      first,
      [...first].sort((a, b) => b - a),
      "newest first",
    );
    await page.getByRole("link", { name: "Older →" }).first().click();
    const second = await seqs();
    assert.equal(second.length, 5);
    assert.ok(Math.max(...second) < Math.min(...first), "the older page starts below the first");
    await page.getByRole("link", { name: "Older →" }).first().click();
    const third = await seqs();
    assert.ok(third.length >= 2 && Math.max(...third) < Math.min(...second));
    await page.getByRole("link", { name: "← Newer" }).first().click();
    assert.deepEqual(await seqs(), second, "back to the same page");
    await page.screenshot({ path: join(ARTIFACTS, "audit-paged.png"), fullPage: true });

    const seq = second[0] as number;
    const [stored] = await auditRecords(gw, { afterSeq: seq - 1, limit: 1 });
    assert.ok(stored?.decisionId, "a request's record has a decision id");
    await page.getByRole("link", { name: `Record ${seq}`, exact: true }).click();
    assert.equal(new URL(page.url()).pathname, `/console/audit/${encodeURIComponent(stored.decisionId)}`);
    const detail = await page.locator(`[data-record="${seq}"]`).innerText();
    for (const field of [
      "Decision id",
      "Rules",
      "Policy version",
      "Chain",
      "Hash",
      "Credential",
      "Arguments",
    ])
      assert.match(detail, new RegExp(field));
    assert.ok(detail.includes(stored.decisionId));
    assert.ok(detail.includes(String(stored.hash)));
    assert.ok(detail.includes(String(stored.credentialId)));
    await page.screenshot({ path: join(ARTIFACTS, "audit-record.png"), fullPage: true });
    const missing = await page.goto(`${gw.url}/console/audit/no-such-decision`);
    assert.equal(missing?.status(), 404);
  });

  it("shows a person's name, not their internal id, in the audit search (the id on hover)", async () => {
    const hana = await addUser("hana");
    const token = await userAccessToken(gw, { ...hana, server: "demo" });
    assert.equal(await listTools(token), 200);
    const id = await userId("hana");
    await page.goto(`${gw.url}/console/audit?principal=hana&server=demo`);
    const cell = page.locator("tr[data-seq] .person").first();
    assert.equal(await cell.innerText(), "hana");
    assert.match(String(await cell.getAttribute("title")), new RegExp(`#${id}$`));
    const table = await page.locator("table").innerText();
    assert.ok(!table.includes(id), "the internal id is not shown in the table");
  });
});
