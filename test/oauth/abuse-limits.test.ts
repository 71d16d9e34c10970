/**
 * Online guessing and registration floods (RFC 6819 §4.4.3.6, RFC 7591 §5): the counters
 * behind the sign-in form and the registration endpoint.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  type AbuseLimitSettings,
  accountBackoffSeconds,
  createAbuseLimits,
  DEFAULT_ABUSE_LIMITS,
} from "../../src/oauth/abuseLimits.js";

const SETTINGS: AbuseLimitSettings = {
  ...DEFAULT_ABUSE_LIMITS,
  signInFailuresPerUser: 3,
  signInFailuresPerAddress: 5,
  signInFailuresPerAccount: 4,
  accountBackoffSeconds: 60,
  accountBackoffMaxSeconds: 600,
  registrationsPerMinute: 2,
  windowSeconds: 60,
};

const limitsWith = (settings: AbuseLimitSettings = SETTINGS) =>
  createAbuseLimits(settings, { secret: randomBytes(32) });

/** One attempt that fails its password check; the wait when refused, else null. */
async function guess(limits: ReturnType<typeof limitsWith>, username: string, address: string) {
  const gate = await limits.beginSignIn(username, address);
  if (!gate.allowed) return gate.retryAfter;
  await gate.failed();
  return null;
}

describe("abuse limits", () => {
  it("stops password guessing for a username from one address after the allowed failures", async () => {
    const limits = limitsWith({ ...SETTINGS, signInFailuresPerAccount: 100 });
    for (let i = 0; i < 3; i++) assert.equal(await guess(limits, "alice", "198.51.100.7"), null, `${i + 1}`);
    const wait = await guess(limits, "ALICE", "198.51.100.7");
    assert.ok(wait !== null && wait > 0 && wait <= 60, "blocked, whatever the case of the name");
  });

  it("does not let a guesser lock the user out from another address within the free failures", async () => {
    const limits = limitsWith();
    for (let i = 0; i < 4; i++) await guess(limits, "alice", "198.51.100.7");
    const gate = await limits.beginSignIn("alice", "203.0.113.9");
    assert.equal(gate.allowed, true);
  });

  it("stops one address spraying many usernames", async () => {
    const limits = limitsWith();
    for (let i = 0; i < 5; i++) await guess(limits, `user${i}`, "198.51.100.7");
    assert.notEqual(await guess(limits, "someone-new", "198.51.100.7"), null);
  });

  it("backs off one account guessed from many addresses (address rotation)", async () => {
    const limits = limitsWith();
    let checked = 0;
    for (let i = 0; i < 40; i++) {
      if ((await guess(limits, "alice", `198.51.100.${i % 4}`)) === null) checked++;
    }
    // Four free failures, then one attempt takes the backoff slot; everything else waits.
    assert.equal(checked, SETTINGS.signInFailuresPerAccount + 1);
    const wait = await guess(limits, "alice", "203.0.113.200");
    assert.ok(wait !== null && wait <= SETTINGS.accountBackoffSeconds, `a fresh address waits too: ${wait}`);
  });

  it("counts parallel guesses as they arrive, not after their checks", async () => {
    const limits = limitsWith();
    const gates = await Promise.all(
      Array.from({ length: 40 }, (_, i) => limits.beginSignIn("alice", `198.51.100.${i % 8}`)),
    );
    assert.equal(gates.filter((g) => g.allowed).length, SETTINGS.signInFailuresPerAccount + 1);
  });

  it("bounds the backoff: it doubles and stops at the maximum, so the user is never locked out for good", () => {
    const s = {
      ...SETTINGS,
      signInFailuresPerAccount: 5,
      accountBackoffSeconds: 1,
      accountBackoffMaxSeconds: 900,
    };
    assert.deepEqual(
      [5, 6, 7, 8, 9, 15, 16, 1000, 1e9].map((n) => accountBackoffSeconds(s, n)),
      [0, 1, 2, 4, 8, 512, 900, 900, 900],
    );
  });

  it("clears a user's failures after a successful sign-in", async () => {
    const limits = limitsWith();
    for (let i = 0; i < 2; i++) await guess(limits, "alice", "198.51.100.7");
    const gate = await limits.beginSignIn("alice", "198.51.100.7");
    assert.ok(gate.allowed);
    await gate.succeeded();
    await guess(limits, "alice", "198.51.100.7");
    await guess(limits, "alice", "198.51.100.7");
    assert.equal((await limits.beginSignIn("alice", "198.51.100.7")).allowed, true);
  });

  it("names an account by a keyed hash, never by the typed text", () => {
    const a = limitsWith();
    const b = limitsWith();
    const typed = "correct horse battery staple";
    assert.equal(a.accountRef(typed), a.accountRef(typed.toUpperCase()));
    assert.notEqual(a.accountRef(typed), b.accountRef(typed), "keyed by the server secret");
    assert.ok(!a.accountRef(typed).includes("horse"));
  });

  it("limits client registrations per address (registration flood)", async () => {
    const limits = limitsWith();
    assert.equal(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.equal(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.notEqual(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.equal(await limits.registrationRetryAfter("203.0.113.9"), null, "other addresses unaffected");
  });
});
