/**
 * Password guessing on one account from many source addresses (RFC 6819 §4.4.3.6): the
 * per-address counters alone let four addresses make 40 guesses in two seconds. The account's
 * own backoff, independent of the address, stops that; it is bounded, so the user signs in
 * again once the backoff ends.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_ABUSE_LIMITS } from "../../src/oauth/abuseLimits.js";
import { openSignInForm } from "../helpers/signInForm.js";
import { authorizationUrl, pkce, registerClient, startHarness, USER } from "./asHarness.js";

const ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const LIMITS = { ...DEFAULT_ABUSE_LIMITS, signInFailuresPerUser: 10, signInFailuresPerAccount: 5 };

describe("sign-in guessing from many addresses", () => {
  it("throttles guesses on one account from four addresses (address rotation)", async () => {
    const h = await startHarness({
      limits: { ...LIMITS, accountBackoffSeconds: 60, accountBackoffMaxSeconds: 60 },
    });
    const form = await openSignInForm(authorizationUrl(h, await registerClient(h), pkce()));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await form.post(USER.username, `guess-${i}`, ADDRESSES[i % ADDRESSES.length]);
        statuses.push(r.status);
      }
      // Each address alone would allow 10 (40 in all): five free failures, then one checked
      // guess, whose failure starts the account's backoff; the rest are refused unchecked.
      assert.equal(statuses.filter((s) => s === 401).length, LIMITS.signInFailuresPerAccount + 1);
      assert.equal(statuses.filter((s) => s === 429).length, 40 - LIMITS.signInFailuresPerAccount - 1);
      const fresh = await form.post(USER.username, USER.password, "127.0.0.9");
      assert.equal(fresh.status, 429, "an address never used before waits too, even with the right password");
      assert.ok(
        Number(fresh.retryAfter) > 0 && Number(fresh.retryAfter) <= 60,
        `Retry-After ${fresh.retryAfter}`,
      );
    } finally {
      await form.close();
      await h.close();
    }
  });

  it("bounds the backoff: the user signs in again once it ends", async () => {
    const h = await startHarness({
      limits: { ...LIMITS, accountBackoffSeconds: 3, accountBackoffMaxSeconds: 3 },
    });
    const form = await openSignInForm(authorizationUrl(h, await registerClient(h), pkce()));
    try {
      for (let i = 0; i <= LIMITS.signInFailuresPerAccount; i++) {
        const r = await form.post(USER.username, `guess-${i}`, ADDRESSES[i % ADDRESSES.length]);
        assert.equal(r.status, 401, `guess ${i + 1} is checked`);
      }
      const waiting = await form.post(USER.username, USER.password, "127.0.0.9");
      assert.equal(waiting.status, 429);
      await sleep(Number(waiting.retryAfter) * 1000 + 300);
      const user = await form.post(USER.username, USER.password, "127.0.0.9");
      assert.ok(
        user.status >= 300 && user.status < 400,
        `signed in: ${user.status} ${user.html.slice(0, 200)}`,
      );
    } finally {
      await form.close();
      await h.close();
    }
  });

  it("counts guesses sent in parallel from several addresses before their passwords are checked", async () => {
    const h = await startHarness({
      limits: { ...LIMITS, accountBackoffSeconds: 60, accountBackoffMaxSeconds: 60 },
    });
    const form = await openSignInForm(authorizationUrl(h, await registerClient(h), pkce()));
    try {
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          form.post(USER.username, `guess-${i}`, ADDRESSES[i % ADDRESSES.length]),
        ),
      );
      const checked = answers.filter((a) => a.status === 401).length;
      assert.equal(checked, LIMITS.signInFailuresPerAccount + 1, answers.map((a) => a.status).join(","));
      assert.equal(answers.filter((a) => a.status === 429).length, 24 - checked);
    } finally {
      await form.close();
      await h.close();
    }
  });
});
