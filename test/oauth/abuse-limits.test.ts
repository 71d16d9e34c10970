/**
 * Online guessing and registration floods (RFC 6819 §4.4.3.6, RFC 7591 §5): the counters
 * behind the sign-in form and the registration endpoint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAbuseLimits } from "../../src/oauth/abuseLimits.js";

const SETTINGS = {
  signInFailuresPerUser: 3,
  signInFailuresPerAddress: 5,
  registrationsPerMinute: 2,
  windowSeconds: 60,
};

describe("abuse limits", () => {
  it("stops password guessing for a username from one address after the allowed failures", async () => {
    const limits = createAbuseLimits(SETTINGS);
    for (let i = 0; i < 3; i++) {
      assert.equal(await limits.signInRetryAfter("alice", "198.51.100.7"), null, `attempt ${i + 1}`);
      await limits.signInFailed("alice", "198.51.100.7");
    }
    const wait = await limits.signInRetryAfter("ALICE", "198.51.100.7");
    assert.ok(wait !== null && wait > 0 && wait <= 60, "blocked, whatever the case of the name");
  });

  it("does not let a guesser lock the user out from another address (lockout denial of service)", async () => {
    const limits = createAbuseLimits(SETTINGS);
    for (let i = 0; i < 4; i++) await limits.signInFailed("alice", "198.51.100.7");
    assert.equal(await limits.signInRetryAfter("alice", "203.0.113.9"), null);
  });

  it("stops one address spraying many usernames", async () => {
    const limits = createAbuseLimits(SETTINGS);
    for (let i = 0; i < 5; i++) await limits.signInFailed(`user${i}`, "198.51.100.7");
    assert.notEqual(await limits.signInRetryAfter("someone-new", "198.51.100.7"), null);
  });

  it("clears a user's failures after a successful sign-in", async () => {
    const limits = createAbuseLimits(SETTINGS);
    for (let i = 0; i < 2; i++) await limits.signInFailed("alice", "198.51.100.7");
    await limits.signInSucceeded("alice", "198.51.100.7");
    await limits.signInFailed("alice", "198.51.100.7");
    await limits.signInFailed("alice", "198.51.100.7");
    assert.equal(await limits.signInRetryAfter("alice", "198.51.100.7"), null);
  });

  it("limits client registrations per address (registration flood)", async () => {
    const limits = createAbuseLimits(SETTINGS);
    assert.equal(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.equal(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.notEqual(await limits.registrationRetryAfter("198.51.100.7"), null);
    assert.equal(await limits.registrationRetryAfter("203.0.113.9"), null, "other addresses unaffected");
  });
});
