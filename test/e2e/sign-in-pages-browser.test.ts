/**
 * The built-in authorization server's sign-in and consent pages in a real browser
 * (playwright-core driving Debian's Chromium) against a real gateway: they name the product
 * and the client by its registered display name — never its internal client id — are styled
 * by their one inline stylesheet under the strict CSP (no violation, no external asset), and
 * show a wrong password inline; the console's sign-in is the same page, naming the Portcullis
 * console. Screenshots go to test-artifacts/oauth-pages/.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import type { Credentials } from "../helpers/browserLogin.js";
import { cleanup, DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve("test-artifacts/oauth-pages");
const REDIRECT = "http://127.0.0.1:49153/callback";

function skipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === "true") return false; // required in CI: fail loudly below
  const reason = `${CHROMIUM} is missing: the sign-in page browser tests are skipped (apt-get install -y chromium)`;
  console.log(`# ${reason}`);
  return reason;
}

describe("sign-in and consent pages in a browser", { skip: skipReason() }, () => {
  let gw: RunningGateway;
  let browser: Browser;
  let alice: Credentials;
  /** Content-Security-Policy violations and requests Chromium made beyond the page itself. */
  const violations: string[] = [];
  const requested: string[] = [];

  async function registerClient(metadata: Record<string, unknown>): Promise<string> {
    const res = await fetch(`${gw.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        application_type: "native",
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        ...metadata,
      }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { client_id: string }).client_id;
  }

  function authorizationUrl(clientId: string): string {
    const url = new URL(`${gw.url}/auth`);
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: "mcp",
      resource: gw.endpoint("demo"),
      state: randomBytes(8).toString("hex"),
      code_challenge: createHash("sha256").update(randomBytes(32)).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();
    return url.href;
  }

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    page.on("request", (r) => {
      if (r.resourceType() !== "document") requested.push(r.url());
    });
    return page;
  }

  async function signIn(page: Page, user: Credentials): Promise<void> {
    await page.getByLabel("Username").fill(user.username);
    await page.getByLabel("Password").fill(user.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForLoadState();
  }

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is required when CI=true`);
    mkdirSync(ARTIFACTS, { recursive: true });
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const out = await gw.cli(["users", "add", "alice"]);
    alice = { username: "alice", password: String(out.password) };
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  it("the sign-in page shows Portcullis and the client's name; a wrong password shows an inline error", async () => {
    const clientId = await registerClient({ client_name: "Acme Notes" });
    const page = await newPage();
    await page.goto(authorizationUrl(clientId));
    await page.waitForURL(/\/oauth\/interaction\//);
    assert.match(await page.title(), /Portcullis/);
    assert.equal(await page.locator("header").innerText(), "Portcullis");
    assert.match(await page.locator("main").innerText(), /to continue to Acme Notes/);
    // Styled by the inline stylesheet the CSP allows by hash.
    const headerBackground = await page
      .locator("header")
      .evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(headerBackground, "rgb(20, 33, 61)");
    await page.screenshot({ path: join(ARTIFACTS, "sign-in.png"), fullPage: true });

    await signIn(page, { username: "alice", password: "not her password" });
    const error = page.getByRole("alert");
    assert.equal(await error.innerText(), "Invalid username or password.");
    assert.equal(await page.getByLabel("Username").inputValue(), "alice", "the username is kept");
    assert.equal(await page.getByLabel("Password").inputValue(), "", "the password is not");
    await page.screenshot({ path: join(ARTIFACTS, "sign-in-wrong-password.png"), fullPage: true });

    await signIn(page, alice);
    await page.getByRole("heading", { name: "Authorize access" }).waitFor();
    assert.deepEqual(violations, [], "no CSP violation");
    assert.deepEqual(requested, [], "no asset fetched besides the pages");
    await page.context().close();
  });

  it("the consent page names the client by its display name, never its internal id", async () => {
    const clientId = await registerClient({ client_name: "Acme Notes" });
    const page = await newPage();
    await page.goto(authorizationUrl(clientId));
    await signIn(page, alice);
    await page.getByRole("heading", { name: "Authorize access" }).waitFor();
    const text = await page.locator("main").innerText();
    assert.match(text, /Acme Notes asks to use MCP servers behind Portcullis/);
    assert.match(text, /you will be sent to 127\.0\.0\.1:49153/);
    assert.ok(!(await page.content()).includes(clientId), `the client id ${clientId} is not on the page`);
    await page.screenshot({ path: join(ARTIFACTS, "consent.png"), fullPage: true });
    assert.deepEqual(violations, [], "no CSP violation");
    await page.context().close();
  });

  it("the console's sign-in names Portcullis and the Portcullis console", async () => {
    const page = await newPage();
    await page.goto(`${gw.url}/console`);
    await page.waitForURL(/\/oauth\/interaction\//);
    assert.equal(await page.locator("header").innerText(), "Portcullis");
    assert.match(await page.locator("main").innerText(), /to continue to Portcullis console/);
    assert.ok(!(await page.content()).includes("portcullis-console"), "not its client id");
    await page.screenshot({ path: join(ARTIFACTS, "console-sign-in.png"), fullPage: true });
    await page.context().close();
  });

  it("names a client registered without a name by the host its answer goes to", async () => {
    const clientId = await registerClient({});
    const page = await newPage();
    await page.goto(authorizationUrl(clientId));
    assert.match(await page.locator("main").innerText(), /to continue to 127\.0\.0\.1:49153/);
    await signIn(page, alice);
    await page.getByRole("heading", { name: "Authorize access" }).waitFor();
    assert.match(await page.locator("main").innerText(), /127\.0\.0\.1:49153 asks to use MCP servers/);
    assert.ok(!(await page.content()).includes(clientId), "the client id is not on the page");
    await page.context().close();
  });
});
