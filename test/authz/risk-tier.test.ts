/**
 * Risk tiers from MCP ToolAnnotations (spec 2025-06-18+): readOnlyHint (default false),
 * destructiveHint (default true, meaningful only when not read-only), openWorldHint (default
 * true). Annotations come from servers that may be untrusted: a missing or non-boolean hint
 * means the stricter value, and an operator pin wins.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { riskTierOf, stricterTier } from "../../src/authz/riskTier.js";

/** Values a hint can take on the wire: the two booleans, absent, and things that are not booleans. */
const VALUES: { label: string; value: unknown; present: boolean }[] = [
  { label: "true", value: true, present: true },
  { label: "false", value: false, present: true },
  { label: "missing", value: undefined, present: false },
  { label: '"true"', value: "true", present: true },
  { label: '"false"', value: "false", present: true },
  { label: "1", value: 1, present: true },
  { label: "0", value: 0, present: true },
  { label: "null", value: null, present: true },
  { label: "{}", value: {}, present: true },
];

describe("risk tier from annotations", () => {
  it("derives read / write / destructive from the spec's examples", () => {
    const table: [Record<string, unknown>, string, boolean][] = [
      [{ readOnlyHint: true }, "read", true],
      [{ readOnlyHint: true, openWorldHint: false }, "read", false],
      // destructiveHint is meaningful only when not read-only.
      [{ readOnlyHint: true, destructiveHint: true }, "read", true],
      [{ readOnlyHint: false, destructiveHint: false }, "write", true],
      [{ destructiveHint: false, openWorldHint: false }, "write", false],
      [{ readOnlyHint: false, destructiveHint: true }, "destructive", true],
      [{ readOnlyHint: false }, "destructive", true],
      [{}, "destructive", true],
      [{ idempotentHint: true, title: "Delete everything" }, "destructive", true],
    ];
    for (const [annotations, tier, openWorld] of table) {
      assert.deepEqual(
        riskTierOf(annotations),
        { tier, openWorld, source: "annotations" },
        JSON.stringify(annotations),
      );
    }
  });

  it("treats every missing or non-boolean hint as its stricter value (all combinations)", () => {
    let cases = 0;
    for (const ro of VALUES) {
      for (const de of VALUES) {
        for (const ow of VALUES) {
          const annotations: Record<string, unknown> = {};
          if (ro.present) annotations.readOnlyHint = ro.value;
          if (de.present) annotations.destructiveHint = de.value;
          if (ow.present) annotations.openWorldHint = ow.value;
          const expected = ro.value === true ? "read" : de.value === false ? "write" : "destructive";
          const got = riskTierOf(annotations);
          const label = `readOnlyHint=${ro.label} destructiveHint=${de.label} openWorldHint=${ow.label}`;
          assert.equal(got.tier, expected, label);
          assert.equal(got.openWorld, ow.value !== false, label);
          assert.equal(got.source, "annotations");
          cases++;
        }
      }
    }
    assert.equal(cases, VALUES.length ** 3);
  });

  it("treats annotations that are not an object as absent: destructive, open world", () => {
    for (const annotations of [undefined, null, [], [true], "readOnlyHint", 42, true]) {
      assert.deepEqual(
        riskTierOf(annotations),
        { tier: "destructive", openWorld: true, source: "annotations" },
        String(annotations),
      );
    }
  });

  it("ignores hints inherited through the prototype (only the server's own fields count)", () => {
    const inherited = Object.create({ readOnlyHint: true, destructiveHint: false, openWorldHint: false });
    assert.deepEqual(riskTierOf(inherited), { tier: "destructive", openWorld: true, source: "annotations" });
  });
});

describe("operator pins win over annotations", () => {
  it("a pin raises a tool that claims to be read-only", () => {
    assert.deepEqual(riskTierOf({ readOnlyHint: true, openWorldHint: false }, { tier: "destructive" }), {
      tier: "destructive",
      openWorld: false,
      source: "operator",
    });
  });

  it("a pin lowers a tool that has no annotations, open world from the pin when given", () => {
    assert.deepEqual(riskTierOf(undefined, { tier: "read", openWorld: false }), {
      tier: "read",
      openWorld: false,
      source: "operator",
    });
    assert.deepEqual(riskTierOf({}, { tier: "write" }), {
      tier: "write",
      openWorld: true,
      source: "operator",
    });
  });

  it("a pin's openWorld overrides the annotation's", () => {
    assert.equal(riskTierOf({ openWorldHint: false }, { tier: "read", openWorld: true }).openWorld, true);
    assert.equal(riskTierOf({ openWorldHint: true }, { tier: "read", openWorld: false }).openWorld, false);
  });

  it("every pin tier wins over every annotation combination", () => {
    for (const tier of ["read", "write", "destructive"] as const) {
      for (const ro of VALUES) {
        for (const de of VALUES) {
          const a: Record<string, unknown> = {};
          if (ro.present) a.readOnlyHint = ro.value;
          if (de.present) a.destructiveHint = de.value;
          const got = riskTierOf(a, { tier });
          assert.equal(got.tier, tier);
          assert.equal(got.source, "operator");
        }
      }
    }
  });
});

describe("stricterTier", () => {
  it("orders read < write < destructive", () => {
    assert.equal(stricterTier("read", "write"), "write");
    assert.equal(stricterTier("destructive", "read"), "destructive");
    assert.equal(stricterTier("write", "write"), "write");
  });
});
