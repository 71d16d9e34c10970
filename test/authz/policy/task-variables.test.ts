/**
 * The policy sees the task a task token is bound to and the RFC 8693 actor acting for the
 * principal: `task.id`, `task.purpose`, `task.remainingCalls`, `task.ageSeconds`, `actor.sub`
 * and `actor.chain` (outermost first), built from the Principal by policyInput; null (an empty
 * chain) for every other credential, so a condition about tasks never holds for a bare key.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policyInput } from "../../../src/authz/authorize.js";
import { compilePolicy } from "../../../src/authz/policy/compile.js";
import type { Principal } from "../../../src/core/principal.js";
import { makeInput, policy } from "./fixtures.js";

const NOW = new Date("2026-07-28T12:00:00Z");

function principal(extra: Partial<Principal> = {}): Principal {
  return {
    id: "key:4fT0qk2LxW9a",
    kind: "service",
    method: "task",
    name: "nightly",
    environment: "dev",
    credentialId: "tsk_1",
    scopes: null,
    oauthScopes: null,
    groups: [],
    issuedAt: new Date(NOW.getTime() - 60_000),
    expiresAt: new Date(NOW.getTime() + 840_000),
    ...extra,
  };
}

const RESOURCE = {
  server: "demo",
  kind: "tool" as const,
  name: "get_time",
  tier: "read" as const,
  openWorld: false,
  annotations: {},
};
const ENV = { environment: "dev", sourceAddress: null, protocolVersion: null, now: NOW };

describe("policy input: task and actor", () => {
  it("carries the task's id, purpose, remaining calls and age, and the actor chain outermost first", () => {
    const input = policyInput(
      principal({
        task: {
          id: "tsk_1",
          purpose: "triage",
          createdAt: new Date(NOW.getTime() - 90_500),
          remainingCalls: 7,
        },
        actor: { sub: "agent-7", act: { sub: "ci-runner" } },
      }),
      "tools/call",
      RESOURCE,
      {},
      ENV,
    );
    assert.deepEqual(input.task, { id: "tsk_1", purpose: "triage", remainingCalls: 7, ageSeconds: 90 });
    assert.deepEqual(input.actor, { sub: "agent-7", chain: ["agent-7", "ci-runner"] });
  });

  it("is null for a credential without a task or actor", () => {
    const input = policyInput(principal({ method: "api_key" }), "tools/call", RESOURCE, {}, ENV);
    assert.equal(input.task, null);
    assert.equal(input.actor, null);
  });
});

describe("conditions on task.* and actor.*", () => {
  const p = compilePolicy(
    policy(`
rules:
  - id: triage-tasks-read
    effect: allow
    when: task.purpose != null && task.purpose.startsWith("triage")
  - id: budget-spent
    effect: deny
    when: task.remainingCalls != null && task.remainingCalls < 1
  - id: stale-task
    effect: deny
    when: task.ageSeconds != null && task.ageSeconds > 3600
  - id: untrusted-agent
    effect: deny
    when: '"rogue-agent" in actor.chain'
  - id: named-agent
    effect: allow
    when: actor.sub == "agent-7"
`),
  );
  const task = (o: Partial<NonNullable<ReturnType<typeof makeInput>["task"]>> = {}) => ({
    id: "tsk_1",
    purpose: "triage the inbox",
    remainingCalls: null,
    ageSeconds: 10,
    ...o,
  });

  it("allows by purpose and by actor", () => {
    assert.deepEqual(p.decide(makeInput({ task: task() })).ruleIds, ["triage-tasks-read"]);
    const byActor = p.decide(makeInput({ actor: { sub: "agent-7", chain: ["agent-7"] } }));
    assert.equal(byActor.effect, "allow");
    assert.deepEqual(byActor.ruleIds, ["named-agent"]);
  });

  it("denies a spent budget, an old task, and a chain that includes a refused actor", () => {
    assert.deepEqual(p.decide(makeInput({ task: task({ remainingCalls: 0 }) })).ruleIds, ["budget-spent"]);
    assert.deepEqual(p.decide(makeInput({ task: task({ ageSeconds: 7200 }) })).ruleIds, ["stale-task"]);
    const relayed = p.decide(
      makeInput({ task: task(), actor: { sub: "agent-7", chain: ["agent-7", "rogue-agent"] } }),
    );
    assert.equal(relayed.effect, "deny");
    assert.deepEqual(relayed.ruleIds, ["untrusted-agent"]);
  });

  it("never matches a task condition for a bare credential (no task: null, no actor: empty chain)", () => {
    const bare = p.decide(makeInput());
    assert.equal(bare.effect, "deny");
    assert.deepEqual(bare.ruleIds, [], "default deny: no task rule matched");
  });

  it("refuses an unknown task field at load, naming it", () => {
    assert.throws(
      () => compilePolicy(policy("rules:\n  - id: x\n    effect: allow\n    when: task.remaining > 0\n")),
      /unknown field `task\.remaining`/,
    );
  });
});
