/**
 * Online password guessing at the sign-in form (RFC 6819 §4.4.3.6, §5.1.4.2.3) and client
 * registration floods (RFC 7591 §5), through the built-in authorization server's HTTP
 * endpoints with small limits.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Config } from "../../src/config/schema.js";
import { type AbuseLimitSettings, DEFAULT_ABUSE_LIMITS } from "../../src/oauth/abuseLimits.js";
import { CookieJar } from "../fixtures/oidc-idp.js";
import {
  authorizationUrl,
  browse,
  type Harness,
  pkce,
  REDIRECT,
  registerClient,
  startHarness,
  USER,
} from "./asHarness.js";

const LIMITS: AbuseLimitSettings = {
  ...DEFAULT_ABUSE_LIMITS,
  signInFailuresPerUser: 3,
  signInFailuresPerAddress: 100,
  registrationsPerMinute: 3,
  windowSeconds: 60,
};

/** Opens the sign-in page of a new authorization request; returns a function posting the form. */
async function signInForm(h: Harness, clientId: string) {
  const jar = new CookieJar();
  let res = await browse(jar, authorizationUrl(h, clientId, pkce()));
  const interaction = new URL(String(res.headers.get("location")), h.issuer);
  res = await browse(jar, interaction);
  const html = await res.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(csrf !== undefined, "a sign-in form");
  return async (username: string, password: string) => {
    const r = await browse(jar, new URL(`${interaction.pathname}/login`, h.issuer), {
      csrf,
      username,
      password,
    });
    return { status: r.status, retryAfter: r.headers.get("retry-after"), html: await r.text() };
  };
}

describe("sign-in throttling", () => {
  it("stops online password guessing at the sign-in form with 429 and Retry-After", async () => {
    const h = await startHarness({ limits: LIMITS });
    try {
      const post = await signInForm(h, await registerClient(h));
      for (let i = 0; i < LIMITS.signInFailuresPerUser; i++) {
        const r = await post(USER.username, `guess-${i}`);
        assert.equal(r.status, 401, `guess ${i + 1} is checked`);
        assert.match(r.html, /Invalid username or password/);
      }
      const blocked = await post(USER.username, "guess-next");
      assert.equal(blocked.status, 429);
      const wait = Number(blocked.retryAfter);
      assert.ok(Number.isInteger(wait) && wait > 0 && wait <= LIMITS.windowSeconds, `Retry-After ${wait}`);
      assert.match(blocked.html, /Too many attempts, try again in 1 minute\b/);
      assert.doesNotMatch(blocked.html, /guess-next/, "the password is never echoed");

      // A username that does not exist gets exactly the same answers: nothing to enumerate.
      for (let i = 0; i < LIMITS.signInFailuresPerUser; i++) {
        const r = await post("mallory", `guess-${i}`);
        assert.equal(r.status, 401);
        assert.match(r.html, /Invalid username or password/);
      }
      const unknown = await post("mallory", "guess-next");
      assert.equal(unknown.status, 429);
      assert.equal(unknown.html.replaceAll("mallory", USER.username), blocked.html);
    } finally {
      await h.close();
    }
  });

  it("a correct password is refused while throttled, and works after the window", async () => {
    const h = await startHarness({
      limits: { ...LIMITS, signInFailuresPerUser: 2, windowSeconds: 1 },
    });
    try {
      const post = await signInForm(h, await registerClient(h));
      assert.equal((await post(USER.username, "wrong")).status, 401);
      assert.equal((await post(USER.username, "wrong")).status, 401);
      const refused = await post(USER.username, USER.password);
      assert.equal(refused.status, 429, "the right password does not get through the block");
      assert.equal(refused.retryAfter, "1");
      assert.doesNotMatch(refused.html, /Authorize access/);

      await sleep(1_200);
      const accepted = await post(USER.username, USER.password);
      assert.ok(accepted.status >= 300 && accepted.status < 400, `signed in: ${accepted.status}`);
    } finally {
      await h.close();
    }
  });

  it("stops registration floods from one address with 429", async () => {
    const h = await startHarness({ limits: LIMITS });
    try {
      for (let i = 0; i < LIMITS.registrationsPerMinute; i++) await registerClient(h);
      const res = await fetch(`${h.issuer}/reg`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          client_name: "Flood",
          application_type: "native",
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: "none",
        }),
      });
      assert.equal(res.status, 429);
      const wait = Number(res.headers.get("retry-after"));
      assert.ok(Number.isInteger(wait) && wait > 0 && wait <= 60, `Retry-After ${wait}`);
      assert.match(String(res.headers.get("content-type")), /^application\/json/);
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.deepEqual(await res.json(), {
        error: "temporarily_unavailable",
        error_description: `too many registrations from this address; retry after ${wait} seconds`,
      });
    } finally {
      await h.close();
    }
  });

  it("throttles by default: oauth.limits defaults to the documented values", () => {
    const config = Config.parse({ oauth: { mode: "builtin" } });
    assert.equal(config.oauth?.mode, "builtin");
    if (config.oauth?.mode === "builtin") assert.deepEqual(config.oauth.limits, DEFAULT_ABUSE_LIMITS);
    assert.throws(() => Config.parse({ oauth: { mode: "builtin", limits: { signInFailures: 5 } } }));
    assert.throws(() => Config.parse({ oauth: { mode: "builtin", limits: { windowSeconds: 0 } } }));
  });
});
