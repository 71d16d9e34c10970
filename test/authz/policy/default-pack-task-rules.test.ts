/**
 * The default pack's task rules (policies/default/15-tasks.yaml, 40-prod.yaml): an API key may
 * only mint read-tier tasks, so trading a standing key for a task token never widens it; and
 * in prod a write-tier or destructive tool needs a task or a person's token, never a bare key.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policyInput, resourceFacts } from "../../../src/authz/authorize.js";
import { loadPolicyFiles } from "../../../src/authz/policy/compile.js";
import { DEFAULT_POLICY_PACK } from "../../../src/authz/policy/defaultPack.js";
import type { RiskTier } from "../../../src/authz/policy/types.js";
import { makeInput } from "./fixtures.js";

const pack = loadPolicyFiles([DEFAULT_POLICY_PACK]);

const KEY = { method: "api_key" as const, kind: "service" as const };
const PERSON = { method: "oauth" as const, kind: "user" as const, scopes: ["mcp:tools:write"] };
const tool = (tier: RiskTier, name = `${tier}_tool`) => ({ name, tier, kind: "tool" as const });

describe("default pack: minting tasks", () => {
  for (const env of ["dev", "prod"]) {
    it(`an API key mints a read-tier task (${env})`, () => {
      const d = pack.decide(
        makeInput({
          principal: { ...KEY, environment: env },
          action: { method: "tasks/mint" },
          resource: tool("read"),
          context: { environment: env },
        }),
      );
      assert.equal(d.effect, "allow");
      assert.deepEqual(d.ruleIds, ["mint-read-tier-tasks"]);
    });
  }

  for (const tier of ["write", "destructive"] as const) {
    it(`an API key may not mint a ${tier}-tier task, whatever else allows it`, () => {
      const d = pack.decide(
        makeInput({
          principal: { ...KEY, environment: "dev" },
          action: { method: "tasks/mint" },
          resource: tool(tier),
          context: { environment: "dev" },
        }),
      );
      assert.equal(d.effect, "deny");
      assert.deepEqual(d.ruleIds, ["api-keys-mint-read-tier-tasks-only"]);
    });
  }

  it("a person with a writing scope mints a write-tier task; without one, does not", () => {
    const mint = (scopes: string[]) =>
      pack.decide(
        makeInput({
          principal: { ...PERSON, scopes, environment: "dev" },
          action: { method: "tasks/mint" },
          resource: tool("write"),
          context: { environment: "dev" },
        }),
      ).effect;
    assert.equal(mint(["mcp:tools:write"]), "allow");
    assert.equal(mint(["mcp:tools:read"]), "deny");
  });
});

describe("default pack: tasks/mint sent by a client", () => {
  it("a client's JSON-RPC message named tasks/mint targets no tool, so no mint rule forwards it", () => {
    // The gateway classifies a client's message by its method: tasks/mint is not one that
    // names a tool, so it has no tier, and the mint rules (which need one) never match it.
    const readTools = { facts: () => ({ tier: "read" as const, openWorld: false, annotations: {} }) };
    const resource = resourceFacts("demo", "tasks/mint", "get_time", readTools);
    assert.deepEqual([resource.kind, resource.tier], ["server", null]);
    const principal = {
      id: "key:4fT0qk2LxW9a",
      kind: "service" as const,
      method: "api_key" as const,
      name: "k",
      environment: "dev",
      credentialId: "4fT0qk2LxW9a",
      scopes: null,
      oauthScopes: null,
      groups: [],
      issuedAt: new Date(),
      expiresAt: new Date(Date.now() + 3_600_000),
    };
    const d = pack.decide(
      policyInput(
        principal,
        "tasks/mint",
        resource,
        { name: "get_time" },
        {
          environment: "dev",
          sourceAddress: null,
          protocolVersion: null,
          now: new Date(),
        },
      ),
    );
    assert.equal(d.effect, "deny");
    assert.deepEqual(d.ruleIds, []);
  });
});

describe("default pack: write-tier tools in prod", () => {
  for (const tier of ["write", "destructive"] as const) {
    it(`a bare API key calling a ${tier}-tier tool in prod is refused by prod-no-bare-key-writes`, () => {
      const d = pack.decide(
        makeInput({
          principal: { ...KEY, environment: "prod" },
          resource: tool(tier),
          context: { environment: "prod" },
        }),
      );
      assert.equal(d.effect, "deny");
      assert.ok(d.ruleIds.includes("prod-no-bare-key-writes"), d.ruleIds.join());
    });
  }

  it("a person's task calls a write-tier tool in prod", () => {
    const d = pack.decide(
      makeInput({
        principal: { method: "task", kind: "user", environment: "prod" },
        task: { id: "tsk_1", purpose: "release notes", remainingCalls: 3, ageSeconds: 5 },
        actor: { sub: "agent-7", chain: ["agent-7"] },
        resource: tool("write"),
        context: { environment: "prod" },
      }),
    );
    assert.equal(d.effect, "allow");
    assert.deepEqual(d.ruleIds, ["write-tier-tasks-of-people"]);
  });

  it("a key's task (principal kind service) never calls a write-tier tool", () => {
    const d = pack.decide(
      makeInput({
        principal: { method: "task", kind: "service", environment: "dev" },
        task: { id: "tsk_2", purpose: "sync", remainingCalls: null, ageSeconds: 5 },
        resource: tool("write"),
        context: { environment: "dev" },
      }),
    );
    assert.equal(d.effect, "deny");
  });

  it("a task token without expiry is refused like any other credential", () => {
    const d = pack.decide(
      makeInput({
        principal: { method: "task", kind: "user", expiresInSeconds: null, environment: "dev" },
        task: { id: "tsk_3", purpose: "x", remainingCalls: null, ageSeconds: 0 },
        resource: tool("read"),
        context: { environment: "dev" },
      }),
    );
    assert.deepEqual(d.ruleIds, ["refuse-credentials-without-expiry"]);
  });
});
