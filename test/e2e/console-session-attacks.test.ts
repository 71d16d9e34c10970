/**
 * Attacks on the admin console's sign-in and session, against a running gateway:
 * - a console cookie copied before sign-out (from a shared machine, a proxy log, a stolen
 *   backup of the browser profile) and replayed after it;
 * - reading the sign-in state cookie for the PKCE verifier (RFC 7636 §7.1: it must stay
 *   secret; with it and an intercepted code, the code can be redeemed);
 * - a password pasted into the username field of the sign-in form, looked for in the logs.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { signInToConsole } from "../helpers/consoleSession.js";
import { cleanup, DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { openSignInForm } from "../helpers/signInForm.js";

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe("console session and sign-in attacks", () => {
  let gw: RunningGateway;
  let admin: { username: string; password: string };

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const out = await gw.cli(["users", "add", "root-admin", "--groups", "admins"]);
    admin = { username: "root-admin", password: String(out.password) };
  });
  after(async () => {
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  const withCookie = (path: string, cookie: string) =>
    fetch(new URL(path, gw.url), { headers: { cookie }, redirect: "manual" });

  it("refuses a console cookie replayed after sign-out", async () => {
    const browser = await signInToConsole(gw, admin);
    const copied = browser.cookie();
    // Positive control: the copy works while the session lives.
    assert.equal((await withCookie("/console/api/approvals", copied)).status, 200);

    const out = await browser.post("/console/logout", {}, "/console");
    assert.equal(out.status, 200, out.html);
    assert.match(out.html, /signed out/);

    const replayed = await withCookie("/console/api/approvals", copied);
    assert.equal(replayed.status, 401, "the API refuses the signed-out session");
    const page = await withCookie("/console/keys", copied);
    assert.equal(page.status, 303);
    assert.equal(page.headers.get("location"), "/console/login");

    // Signing in again gives a new session that works.
    const again = await signInToConsole(gw, admin);
    assert.equal((await withCookie("/console/api/approvals", again.cookie())).status, 200);
  });

  it("keeps the PKCE verifier, state and nonce out of the readable login-state cookie", async () => {
    const res = await fetch(new URL("/console/login", gw.url), { redirect: "manual" });
    assert.equal(res.status, 303);
    const auth = new URL(String(res.headers.get("location")));
    const challenge = String(auth.searchParams.get("code_challenge"));
    const state = String(auth.searchParams.get("state"));
    const nonce = String(auth.searchParams.get("nonce"));
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("portcullis_console_login="));
    assert.ok(cookie, "a login-state cookie is set");
    const value = cookie.split(";")[0]?.split("=")[1] ?? "";

    // Everything a reader can get out of the cookie: its text and every base64url part decoded.
    const readable = [
      value,
      ...value.split(".").map((p) => Buffer.from(p, "base64url").toString("latin1")),
    ].join("\n");
    assert.ok(!readable.includes(state), "the state is not readable");
    assert.ok(!readable.includes(nonce), "the nonce is not readable");
    assert.doesNotMatch(readable, /verifier/);
    for (const candidate of readable.match(/[A-Za-z0-9_-]{43}/g) ?? []) {
      const hashed = createHash("sha256").update(candidate).digest("base64url");
      assert.notEqual(hashed, challenge, "no string in the cookie is the verifier of the challenge");
    }
  });

  it("leaves no trace in the logs or the store of a password typed as the username", async () => {
    const pasted = "Tr0ub4dor&3-pasted-into-username";
    const form = await openSignInForm(new URL("/console/login", gw.url));
    try {
      const failed = await form.post(pasted, "anything");
      assert.equal(failed.status, 401);
      await sleep(300); // the log line and any audit batch are written
      const logged = [JSON.stringify(gw.logs), ...gw.stderr].join("\n");
      // Positive control: the failure itself is logged, naming the account by a keyed hash.
      const entry = gw.logs.find((l) => l.event === "oauth.login_failed");
      assert.ok(entry, "the failed sign-in is logged");
      assert.match(String(entry.account), /^[A-Za-z0-9_-]{22}$/);
      assert.ok(!logged.includes(pasted), "the typed text is not in the logs");
      assert.ok(!logged.includes("pasted-into"), "nor any part of it");
      for (const file of filesUnder(join(gw.dir, "data")))
        assert.ok(!readFileSync(file).includes(pasted), `not in ${file}`);
    } finally {
      await form.close();
    }
  });
});
