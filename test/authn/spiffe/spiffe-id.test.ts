/** SPIFFE ID parsing (SPIFFE-ID.md §2): what is an ID and what is refused, with the reason. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseSpiffeId } from "../../../src/authn/spiffe/spiffeId.js";

describe("SPIFFE ID parsing", () => {
  it("parses trust domain and path", () => {
    assert.deepEqual(parseSpiffeId("spiffe://example.org/ns/ci/sa/builder"), {
      id: "spiffe://example.org/ns/ci/sa/builder",
      trustDomain: "example.org",
      path: "/ns/ci/sa/builder",
    });
    assert.deepEqual(parseSpiffeId("spiffe://td_1.example-2"), {
      id: "spiffe://td_1.example-2",
      trustDomain: "td_1.example-2",
      path: "",
    });
  });

  const refused: Array<[string, RegExp]> = [
    ["SPIFFE://example.org/a", /starts with spiffe:\/\//],
    ["https://example.org/a", /starts with spiffe:\/\//],
    ["spiffe://Example.org/a", /lower-case/],
    ["spiffe://example.org:443/a", /no port/],
    ["spiffe://user@example.org/a", /no userinfo/],
    ["spiffe:///a", /trust domain is empty/],
    ["spiffe://example.org/a?b=c", /no query or fragment/],
    ["spiffe://example.org/a#b", /no query or fragment/],
    ["spiffe://example.org/", /empty segment or trailing/],
    ["spiffe://example.org/a//b", /empty segment/],
    ["spiffe://example.org/a/../b", /'\.' or '\.\.'/],
    ["spiffe://example.org/a/./b", /'\.' or '\.\.'/],
    ["spiffe://example.org/a%20b", /segments hold only/],
    [`spiffe://${"a".repeat(256)}/x`, /longer than 255/],
    [`spiffe://example.org/${"a".repeat(2040)}`, /at most 2048 bytes/],
  ];
  for (const [value, why] of refused) {
    it(`refuses ${value.length > 60 ? `${value.slice(0, 40)}… (${value.length} chars)` : value}`, () => {
      const r = parseSpiffeId(value);
      assert.ok("problem" in r, "refused");
      assert.match(r.problem, why);
    });
  }
});
