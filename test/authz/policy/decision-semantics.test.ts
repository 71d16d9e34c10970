import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePolicy } from "../../../src/authz/policy/compile.js";
import { makeInput, policy } from "./fixtures.js";

const PACK = `
rules:
  - id: api-keys-read-tier
    effect: allow
    match:
      methods: [tools/call]
      servers: [github, "jira-*"]
      tools: ["get_*", search]
      tiers: [read]
      authMethods: [api_key]
  - id: oauth-write
    effect: allow
    match: { methods: [tools/call], tiers: [write], authMethods: [oauth] }
    when: "'repo:write' in principal.scopes"
  - id: destructive-review
    effect: review
    match: { tiers: [destructive] }
    review: { timeoutSeconds: 120 }
  - id: open-world-review
    effect: review
    match: { openWorld: true, environments: [prod] }
  - id: no-expiry-refused
    effect: deny
    when: principal.expiresInSeconds == null
  - id: no-etc
    effect: deny
    match: { tools: ["read_file"] }
    when: context.arguments.path.startsWith('/etc')
  - id: also-read
    effect: allow
    match: { tools: ["get_*"] }
`;

describe("policy decisions", () => {
  const p = compilePolicy(policy(PACK));

  it("allows with every matching allow rule's id and the policy version", () => {
    const d = p.decide(makeInput());
    assert.equal(d.effect, "allow");
    assert.deepEqual(d.ruleIds, ["api-keys-read-tier", "also-read"]);
    assert.equal(d.policyVersion, p.version);
    assert.match(p.version, /^[0-9a-f]{12}$/);
  });

  it("denies with 'no rule allows this' and no ids when nothing matches", () => {
    const d = p.decide(makeInput({ resource: { name: "create_issue", tier: "write" } }));
    assert.deepEqual(d, {
      effect: "deny",
      ruleIds: [],
      reason: "no rule allows this",
      policyVersion: p.version,
    });
  });

  it("refuses a write-tier call with an API key and allows it with an OAuth token holding the scope", () => {
    const write = { resource: { name: "create_issue", tier: "write" as const } };
    assert.equal(p.decide(makeInput(write)).effect, "deny");
    const oauth = { method: "oauth" as const, kind: "user" as const };
    assert.equal(p.decide(makeInput({ ...write, principal: { ...oauth, scopes: [] } })).effect, "deny");
    const ok = p.decide(makeInput({ ...write, principal: { ...oauth, scopes: ["repo:write"] } }));
    assert.deepEqual([ok.effect, ok.ruleIds], ["allow", ["oauth-write"]]);
  });

  it("deny overrides review overrides allow", () => {
    const review = p.decide(makeInput({ resource: { openWorld: true } }));
    assert.equal(review.effect, "review");
    assert.deepEqual(review.ruleIds, ["open-world-review"]);
    const deny = p.decide(
      makeInput({ resource: { openWorld: true }, principal: { expiresInSeconds: null } }),
    );
    assert.deepEqual([deny.effect, deny.ruleIds], ["deny", ["no-expiry-refused"]]);
  });

  it("waits for review at most the smallest timeout among matching review rules (default 300)", () => {
    const both = p.decide(makeInput({ resource: { tier: "destructive", openWorld: true } }));
    assert.deepEqual([both.effect, both.reviewTimeoutSeconds], ["review", 120]);
    const one = p.decide(makeInput({ resource: { openWorld: true } }));
    assert.equal(one.reviewTimeoutSeconds, 300);
    assert.equal(p.decide(makeInput()).reviewTimeoutSeconds, undefined);
  });

  it("a deny condition that errors fails closed; an allow condition that errors does not match", () => {
    // context.arguments.path is missing: the deny rule's `when` errors -> deny.
    const d = p.decide(makeInput({ resource: { name: "read_file" } }));
    assert.deepEqual([d.effect, d.ruleIds], ["deny", ["no-etc"]]);
    const ok = p.decide(
      makeInput({ resource: { name: "read_file" }, context: { arguments: { path: "/tmp/x" } } }),
    );
    assert.deepEqual([ok.effect, ok.ruleIds], ["deny", []]); // no allow rule covers read_file
    const q = compilePolicy(
      policy(`rules:
  - { id: a, effect: allow, when: "context.arguments.limit < 10" }`),
    );
    assert.equal(q.decide(makeInput()).effect, "deny");
    assert.equal(q.decide(makeInput({ context: { arguments: { limit: 5 } } })).effect, "allow");
  });

  it("a match field whose input is null does not hold (server-wide methods have no tool name)", () => {
    const q = compilePolicy(
      policy(`rules:
  - { id: list, effect: allow, match: { methods: [tools/list] } }
  - { id: deny-delete, effect: deny, match: { tools: ["delete_*"] } }`),
    );
    const d = q.decide(
      makeInput({ action: { method: "tools/list" }, resource: { kind: "server", name: null, tier: null } }),
    );
    assert.deepEqual([d.effect, d.ruleIds], ["allow", ["list"]]);
  });

  it("reads CEL conditions over every part of the input", () => {
    const q = compilePolicy(
      policy(`rules:
  - id: business-hours
    effect: allow
    when: |
      context.time.getHours() >= 9 && context.time.getHours() < 18
      && principal.credentialAgeSeconds < 86400
      && resource.annotations.readOnlyHint == true
      && principal.groups.exists(g, g == 'sre')`),
    );
    const base = { resource: { annotations: { readOnlyHint: true } }, principal: { groups: ["sre"] } };
    assert.equal(q.decide(makeInput(base)).effect, "allow");
    assert.equal(
      q.decide(makeInput({ ...base, context: { time: new Date("2025-06-01T22:00:00Z") } })).effect,
      "deny",
    );
    assert.equal(q.decide(makeInput({ ...base, principal: { groups: [] } })).effect, "deny");
  });

  it("explain traces every rule with file, line and why, and agrees with decide", () => {
    const input = makeInput({ resource: { name: "read_file" } });
    const { decision, trace } = p.explain(input);
    assert.deepEqual(decision.effect, p.decide(input).effect);
    assert.deepEqual(decision.ruleIds, p.decide(input).ruleIds);
    assert.equal(trace.length, p.ruleCount);
    const first = trace[0];
    assert.deepEqual(first && [first.id, first.file, first.line, first.matched], [
      "api-keys-read-tier",
      "policies/test.yaml",
      3,
      false,
    ]);
    assert.match(first?.why ?? "", /^tools: "read_file" matches none of/);
    const noEtc = trace.find((t) => t.id === "no-etc");
    assert.equal(noEtc?.matched, true);
    assert.match(noEtc?.why ?? "", /when failed .*fails closed/);
    assert.equal(trace.find((t) => t.id === "oauth-write")?.why, 'tiers: "read" matches none of ["write"]');
    const ok = p.explain(makeInput());
    assert.equal(ok.trace.find((t) => t.id === "no-expiry-refused")?.why, "when is false");
  });

  it("indexes by method and server without changing results for unknown methods or servers", () => {
    const q = compilePolicy(
      policy(`rules:
  - { id: any, effect: allow, match: { tools: [x] } }
  - { id: gh, effect: allow, match: { methods: [tools/call], servers: [github] } }`),
    );
    assert.deepEqual(
      q.decide(makeInput({ resource: { name: "x" }, action: { method: "weird/method" } })).ruleIds,
      ["any"],
    );
    assert.deepEqual(q.decide(makeInput({ resource: { name: "y", server: "gitlab" } })).ruleIds, []);
    assert.deepEqual(q.decide(makeInput({ resource: { name: "x" } })).ruleIds, ["any", "gh"]);
  });
});
