/**
 * What a task may ask for (src/tasks/grants.ts, src/tasks/limits.ts): grants name configured
 * servers and never exceed the owner's credential (asking for more is refused, naming the
 * grant); lifetimes default to tasks.defaultTtlSeconds and never pass tasks.maxTtlSeconds;
 * budgets are positive and bounded; a purpose is required and bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Config } from "../../src/config/schema.js";
import { compileScopes } from "../../src/core/scope.js";
import { grantBeyondOwner, parseGrants } from "../../src/tasks/grants.js";
import { checkLimits } from "../../src/tasks/limits.js";

const SERVERS = new Set(["demo", "files"]);
const TASKS = Config.parse({}).tasks;

function parsed(grants: string[]) {
  const r = parseGrants(grants, SERVERS);
  assert.ok(r.ok, JSON.stringify(r));
  return r.grants;
}

describe("task grants", () => {
  it("parses server and server:tool grants, collapsing what a server-wide grant covers", () => {
    assert.deepEqual(
      parsed(["demo:echo", "files", "files:read", "demo:echo"]).map((g) => g.grant),
      ["demo:echo", "files"],
    );
    assert.deepEqual(
      parsed(["demo:*"]).map((g) => g.grant),
      ["demo"],
    );
  });

  it("refuses an empty list, '*', malformed patterns and unknown servers", () => {
    assert.equal(parseGrants([], SERVERS).ok, false);
    const star = parseGrants(["*"], SERVERS);
    assert.ok(!star.ok && star.error === "invalid_scope");
    const bad = parseGrants(["Demo Server"], SERVERS);
    assert.ok(!bad.ok && bad.error === "invalid_scope");
    const unknown = parseGrants(["mail:send"], SERVERS);
    assert.ok(!unknown.ok && unknown.error === "invalid_target" && unknown.reason.includes("mail"));
  });

  it("a task never holds more than its owner: each grant must lie within the owner's scopes", () => {
    const toolKey = compileScopes(["demo:echo", "demo:get_*"]);
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo:echo"])), null);
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo:get_time"])), null);
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo:get_*"])), null);
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo:add_note"]))?.grant, "demo:add_note");
    // A server-wide grant is more than a tool-scoped key has.
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo"]))?.grant, "demo");
    // A pattern is never assumed to lie within another pattern.
    assert.equal(grantBeyondOwner(toolKey, parsed(["demo:e*"]))?.grant, "demo:e*");
    assert.equal(grantBeyondOwner(toolKey, parsed(["files:read"]))?.grant, "files:read");

    const serverKey = compileScopes(["demo"]);
    assert.equal(grantBeyondOwner(serverKey, parsed(["demo", "demo:anything"])), null);
    assert.equal(grantBeyondOwner(serverKey, parsed(["files"]))?.grant, "files");
    assert.equal(grantBeyondOwner(compileScopes(["*"]), parsed(["demo", "files:x"])), null);
    // Anonymous callers (no scopes) own nothing.
    assert.equal(grantBeyondOwner(null, parsed(["demo"]))?.grant, "demo");
  });
});

describe("task lifetime, budget and purpose", () => {
  it("defaults the lifetime to 15 minutes and accepts up to the maximum", () => {
    const r = checkLimits(TASKS, { purpose: "summarise the inbox" });
    assert.deepEqual(r, { ok: true, purpose: "summarise the inbox", ttlSeconds: 900, budget: null });
    const max = checkLimits(TASKS, { purpose: "p", ttlSeconds: 3600, budget: 5 });
    assert.ok(max.ok && max.ttlSeconds === 3600 && max.budget === 5);
  });

  it("refuses a lifetime longer than tasks.maxTtlSeconds, zero, negative or fractional", () => {
    for (const ttlSeconds of [3601, 0, -5, 1.5, Number.POSITIVE_INFINITY, Number.NaN]) {
      const r = checkLimits(TASKS, { purpose: "p", ttlSeconds });
      assert.ok(!r.ok && r.error === "invalid_request" && r.reason.startsWith("ttl"), String(ttlSeconds));
    }
    const r = checkLimits(TASKS, { purpose: "p", ttlSeconds: 7200 });
    assert.ok(!r.ok && r.reason.includes("tasks.maxTtlSeconds"));
  });

  it("refuses a budget that is not a positive whole number up to tasks.maxBudget", () => {
    for (const budget of [0, -1, 2.5, TASKS.maxBudget + 1]) {
      const r = checkLimits(TASKS, { purpose: "p", budget });
      assert.ok(!r.ok && r.reason.startsWith("budget"), String(budget));
    }
  });

  it("refuses a missing, blank, oversized or control-character purpose", () => {
    for (const purpose of [undefined, "", "   ", "x".repeat(TASKS.maxPurposeLength + 1), "bell\u0007"]) {
      const r = checkLimits(TASKS, { purpose });
      assert.ok(!r.ok && r.reason.startsWith("purpose"), JSON.stringify(purpose));
    }
  });

  it("the config refuses a default lifetime above the maximum, naming the field", () => {
    const r = Config.safeParse({ tasks: { defaultTtlSeconds: 7200, maxTtlSeconds: 3600 } });
    assert.ok(!r.success);
    assert.deepEqual(r.error.issues[0]?.path, ["tasks", "defaultTtlSeconds"]);
    assert.equal(Config.safeParse({ tasks: { maxTtlSeconds: 10 ** 9 } }).success, false);
  });
});
