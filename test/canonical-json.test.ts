/**
 * Canonical JSON is what tool pins, approval bindings and audit hashes are computed over:
 * the same text for equal values, and no value, however deep, can exhaust the stack of the
 * process computing it (a 100,000-deep array once stopped the audit writer).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  CanonicalJsonNotSerialisable,
  CanonicalJsonTooDeep,
  canonicalJson,
  canonicalJsonUnbounded,
  MAX_DEPTH,
} from "../src/core/canonicalJson.js";

/**
 * The reference, written the obvious (recursive) way: keys sorted at every level, the
 * platform's JSON.stringify for everything else. (Building a sorted object and stringifying
 * it would not do: integer-like keys always come first in a JavaScript object.)
 */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`)
    .join(",")}}`;
}

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
}

describe("canonical JSON", () => {
  it("equals the sorted-keys reference for every JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const expected = reference(v);
        assert.equal(canonicalJson(v), expected);
        assert.equal(canonicalJsonUnbounded(v), expected);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses a value nested past the limit with a typed error, and writes it unbounded without exhausting the stack", () => {
    assert.doesNotThrow(() => canonicalJson(nested(MAX_DEPTH)));
    assert.throws(() => canonicalJson(nested(MAX_DEPTH + 1)), CanonicalJsonTooDeep);
    const deep = nested(1_000_000);
    assert.throws(() => canonicalJson(deep), CanonicalJsonTooDeep);
    assert.equal(canonicalJsonUnbounded(deep).length, 1 + 500_000 * 2 + 500_000 * 6);
  });

  it("names cycles and BigInts instead of looping or crashing", () => {
    const cyclic: Record<string, unknown> = { a: [1] };
    (cyclic.a as unknown[]).push(cyclic);
    assert.throws(() => canonicalJsonUnbounded(cyclic), CanonicalJsonNotSerialisable);
    assert.throws(() => canonicalJson({ n: 1n }), CanonicalJsonNotSerialisable);
    const shared = { x: 1 };
    assert.equal(canonicalJsonUnbounded({ b: shared, a: shared }), '{"a":{"x":1},"b":{"x":1}}');
  });
});
