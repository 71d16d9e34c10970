/**
 * The integrity of what review hands out: requestState (MCP MRTR: attacker-controlled on
 * the way back) and signed approval links; and who counts as the caller for separation of
 * duties.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { argumentsHash } from "../../src/review/binding.js";
import { deriveReviewKey } from "../../src/review/keys.js";
import { decodeRequestState, encodeRequestState } from "../../src/review/requestState.js";
import { isSelfApproval } from "../../src/review/separationOfDuties.js";
import { checkSignedLink, signedLinkPath } from "../../src/review/signedLinks.js";

const secret = randomBytes(32);
const stateKey = deriveReviewKey(secret, "request-state");
const linkKey = deriveReviewKey(secret, "approval-link");
const claims = {
  a: "apr_0123456789abcdef",
  p: "key:X",
  s: "demo",
  m: "tools/call",
  t: "delete_note",
  h: "00",
  e: 1,
};

describe("requestState", () => {
  it("round-trips and rejects any alteration, another key, and a foreign state", () => {
    const state = encodeRequestState(stateKey, claims);
    assert.deepEqual(decodeRequestState(stateKey, state), claims);
    const [prefix, body, sig] = state.split(".") as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...claims, p: "key:Y" })).toString("base64url");
    assert.equal(decodeRequestState(stateKey, `${prefix}.${forged}.${sig}`), null);
    assert.equal(decodeRequestState(stateKey, `${prefix}.${body}.${sig.slice(1)}`), null);
    assert.equal(decodeRequestState(deriveReviewKey(randomBytes(32), "request-state"), state), null);
    assert.equal(decodeRequestState(linkKey, state), null, "a link key never validates a state");
    assert.equal(decodeRequestState(stateKey, "upstream-opaque-state"), null);
  });

  it("binds the arguments: any change changes the hash, key order does not", () => {
    assert.equal(argumentsHash({ a: 1, b: [1, 2] }), argumentsHash({ b: [1, 2], a: 1 }));
    assert.notEqual(argumentsHash({ id: "n1" }), argumentsHash({ id: "n2" }));
    assert.notEqual(argumentsHash({ id: "n1" }), argumentsHash({ id: "n1", force: true }));
  });
});

describe("signed approval links", () => {
  it("accepts the signed link until it expires and refuses tampering", () => {
    const until = new Date(Date.now() + 60_000);
    const url = new URL(`http://gw${signedLinkPath(linkKey, "approve", claims.a, until)}`);
    const exp = url.searchParams.get("exp") ?? undefined;
    const sig = url.searchParams.get("sig") ?? undefined;
    assert.deepEqual(checkSignedLink(linkKey, "approve", claims.a, exp, sig), { ok: true });
    assert.equal(
      checkSignedLink(linkKey, "deny", claims.a, exp, sig).ok,
      false,
      "approve link is not a deny link",
    );
    assert.equal(checkSignedLink(linkKey, "approve", "apr_fedcba9876543210", exp, sig).ok, false);
    assert.equal(checkSignedLink(linkKey, "approve", claims.a, String(Number(exp) + 1), sig).ok, false);
    assert.deepEqual(
      checkSignedLink(linkKey, "approve", claims.a, exp, sig, new Date(until.getTime() + 1000)),
      {
        ok: false,
        reason: "expired",
      },
    );
  });
});

describe("separation of duties", () => {
  it("refuses self-approval under every name of the caller", () => {
    const key = { principalId: "key:AbC123def456", principalName: "ci-bot" };
    for (const self of ["key:AbC123def456", "AbC123def456", "CI-Bot", " ci-bot "])
      assert.ok(isSelfApproval(key, self), self);
    assert.ok(!isSelfApproval(key, "alice"));
    const user = { principalId: "oauth:https://gw.example#u_42", principalName: "alice@example.com" };
    assert.ok(isSelfApproval(user, "u_42"));
    assert.ok(isSelfApproval(user, "alice@example.com"));
    // The same person signed in through another client has the same principal id.
    assert.ok(isSelfApproval(user, "console", "oauth:https://gw.example#u_42"));
    assert.ok(!isSelfApproval(user, "bob@example.com", "oauth:https://gw.example#u_7"));
  });
});
