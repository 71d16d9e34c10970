/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests: whether to skip
 * (only outside CI, with a printed reason), how to launch it, and signing in to the console on
 * the built-in authorization server's page.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** False when Chromium is there or CI requires it (the test then fails loudly); else the reason to skip. */
export function chromiumSkipReason(what: string): string | false {
  if (existsSync(CHROMIUM) || process.env.CI === "true") return false;
  const reason = `${CHROMIUM} is missing: ${what} skipped (apt-get install -y chromium)`;
  console.log(`# ${reason}`);
  return reason;
}

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is required when CI=true`);
  return chromium.launch({
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
}

/**
 * Opens the console at `base` and submits the sign-in form; the status of the console's
 * callback, or null when the authorization server kept the browser on its sign-in page.
 */
export async function consoleSignIn(
  page: Page,
  base: string,
  user: { username: string; password: string },
): Promise<number | null> {
  await page.goto(`${base}/console`);
  await page.waitForURL(/\/oauth\/interaction\//);
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Password").fill(user.password);
  const callback = page.waitForResponse((r) => r.url().includes("/console/callback"), { timeout: 30_000 });
  const [answer] = await Promise.all([
    Promise.race([
      callback,
      page.waitForResponse((r) => r.url().includes("/oauth/interaction/") && r.request().method() === "POST"),
    ]),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  if (!answer.url().includes("/console/callback")) {
    // The sign-in POST answered: a redirect continues to the callback, a page is a refusal.
    if (answer.status() < 300 || answer.status() >= 400) {
      callback.catch(() => {});
      return null;
    }
    const done = await callback;
    await page.waitForLoadState();
    return done.status();
  }
  await page.waitForLoadState();
  return answer.status();
}
