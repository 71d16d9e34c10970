/**
 * `match.workloads`: SPIFFE IDs and path patterns of workload principals (docs/policy.md).
 * A pattern never reaches past its segment with `*`, never matches another trust domain, and
 * never matches a principal that is not a workload (an API key whose id happens to look like
 * a SPIFFE ID, for instance).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePolicy } from "../../../src/authz/policy/compile.js";
import { makeInput, policy } from "./fixtures.js";

const PACK = `
rules:
  - id: ci-jobs
    effect: allow
    match:
      workloads: ["spiffe://example.org/ns/ci/sa/*", "spiffe://example.org/ns/batch/**"]
  - id: exact-reporter
    effect: allow
    match:
      workloads: ["spiffe://example.org/ns/prod/sa/reporter"]
      tiers: [read]
`;

const workload = (id: string, method: "jwt_svid" | "mtls" = "jwt_svid") =>
  makeInput({ principal: { id, kind: "workload", method } });

describe("policy match.workloads", () => {
  const p = compilePolicy(policy(PACK));
  const effect = (id: string) => p.decide(workload(id)).effect;

  it("matches exact SPIFFE IDs and path patterns", () => {
    assert.equal(effect("spiffe://example.org/ns/ci/sa/builder"), "allow");
    assert.equal(effect("spiffe://example.org/ns/batch/a/b/c"), "allow");
    assert.equal(effect("spiffe://example.org/ns/prod/sa/reporter"), "allow");
    assert.deepEqual(p.decide(workload("spiffe://example.org/ns/prod/sa/reporter", "mtls")).ruleIds, [
      "exact-reporter",
    ]);
  });

  it("does not let * reach into deeper paths, other prefixes or other trust domains", () => {
    assert.equal(effect("spiffe://example.org/ns/ci/sa/builder/extra"), "deny");
    assert.equal(effect("spiffe://example.org/ns/ci/sax/builder"), "deny");
    assert.equal(effect("spiffe://evil.org/ns/ci/sa/builder"), "deny");
    assert.equal(effect("spiffe://example.org/ns/prod/sa/reporter2"), "deny");
  });

  it("never matches a principal that is not a workload, whatever its id", () => {
    const key = makeInput({ principal: { id: "spiffe://example.org/ns/ci/sa/builder", kind: "service" } });
    assert.equal(p.decide(key).effect, "deny");
  });

  it("refuses a pattern with a wildcard trust domain or a query at compile time", () => {
    for (const bad of ["spiffe://*/ns/ci", "spiffe://example.org/ns?x", "example.org/ns/ci"]) {
      assert.throws(
        () =>
          compilePolicy(
            policy(`rules:\n  - id: r\n    effect: allow\n    match: { workloads: ["${bad}"] }\n`),
          ),
        /workloads/,
        bad,
      );
    }
  });
});
