import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bearerToken } from "../../src/authn/authenticate.js";

describe("RFC 6750 bearer header", () => {
  it("accepts JWT access tokens longer than 512 characters (regression: they were called malformed)", () => {
    const jwt = `${"a".repeat(40)}.${"b".repeat(900)}.${"c".repeat(86)}`;
    assert.equal(bearerToken({ authorization: `Bearer ${jwt}` }), jwt);
  });

  it("tells a missing header from a malformed one", () => {
    assert.equal(bearerToken({}), undefined);
    assert.equal(bearerToken({ authorization: "Basic dXNlcjpwYXNz" }), null);
    assert.equal(bearerToken({ authorization: "Bearer " }), null);
    assert.equal(bearerToken({ authorization: "Bearer two tokens" }), null);
  });
});
