/**
 * The console session cookie and its CSRF token: a forged, altered or expired cookie is no
 * session, and a CSRF token from another session is refused.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  type ConsoleSession,
  consoleKey,
  cookieNames,
  csrfToken,
  csrfValid,
  newSession,
  openCookie,
  readCookie,
  sealCookie,
  setCookie,
} from "../../src/console/session.js";

const secret = randomBytes(32);
const key = consoleKey(secret, "session");

describe("console session cookie", () => {
  it("round-trips a session sealed with the key", () => {
    const s = newSession("u_1", 30);
    assert.deepEqual(openCookie<ConsoleSession>(key, sealCookie(key, s)), s);
  });

  it("rejects a cookie whose payload was altered to another user", () => {
    const [v, , tag] = sealCookie(key, newSession("u_1", 30)).split(".");
    const forged = Buffer.from(JSON.stringify(newSession("u_admin", 30))).toString("base64url");
    assert.equal(openCookie(key, `${v}.${forged}.${tag}`), null);
  });

  it("rejects a cookie sealed under another server secret", () => {
    const other = consoleKey(randomBytes(32), "session");
    assert.equal(openCookie(key, sealCookie(other, newSession("u_1", 30))), null);
  });

  it("rejects an expired session", () => {
    const s = newSession("u_1", 1, Date.now() - 120_000);
    assert.equal(openCookie(key, sealCookie(key, s)), null);
  });

  it("rejects garbage", () => {
    for (const v of [undefined, "", "v1", "v1..", "v2.a.b", "v1.%%%.x"])
      assert.equal(openCookie(key, v), null);
  });

  it("binds the CSRF token to the session", () => {
    const csrf = consoleKey(secret, "csrf");
    const a = newSession("u_1", 30);
    const b = newSession("u_1", 30);
    assert.ok(csrfValid(csrf, a, csrfToken(csrf, a)));
    assert.equal(csrfValid(csrf, b, csrfToken(csrf, a)), false);
    assert.equal(csrfValid(csrf, a, null), false);
  });

  it("uses __Host- names and Secure on https, plain names on http; HttpOnly and SameSite always", () => {
    assert.equal(cookieNames("https://gw.example.com").session, "__Host-portcullis_console");
    assert.equal(cookieNames("http://127.0.0.1:8080").session, "portcullis_console");
    const c = setCookie("__Host-portcullis_console", "v", { maxAge: 60, secure: true, sameSite: "Strict" });
    assert.match(c, /; Path=\/; Max-Age=60; HttpOnly; SameSite=Strict; Secure$/);
    assert.doesNotMatch(c, /Domain/);
    assert.equal(readCookie("a=1; portcullis_console=v1.x.y", "portcullis_console"), "v1.x.y");
  });
});
