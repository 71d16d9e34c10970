/**
 * Attacks on the decision itself, as fast-check properties: random rule sets and random
 * requests, and tool names disguised by case, compatibility forms and invisible characters.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compilePolicy } from "../../../src/authz/policy/compile.js";
import type { Effect } from "../../../src/authz/policy/types.js";
import { makeInput, policy } from "./fixtures.js";

const SERVERS = ["github", "jira", "jira-eu", "slack"];
const TOOLS = ["get_issue", "search", "delete_repo", "create_issue", "Get_Issue"];
const METHODS = ["tools/call", "resources/read", "tools/list"];

interface RuleSpec {
  effect: Effect;
  methods?: string[];
  servers?: string[];
  tools?: string[];
  tiers?: Array<"read" | "write" | "destructive">;
  authMethods?: Array<"api_key" | "oauth">;
  when?: string;
}

const sub = <T>(xs: readonly T[]) => fc.option(fc.subarray([...xs], { minLength: 1 }), { nil: undefined });
const ruleArb: fc.Arbitrary<RuleSpec> = fc.record({
  effect: fc.constantFrom<Effect>("allow", "deny", "review"),
  methods: sub(METHODS),
  servers: sub([...SERVERS, "jira-*", "*"]),
  tools: sub([...TOOLS, "get_*", "*_repo"]),
  tiers: sub(["read", "write", "destructive"] as const),
  authMethods: sub(["api_key", "oauth"] as const),
  when: fc.option(
    fc.constantFrom(
      "principal.expiresInSeconds != null",
      "context.arguments.force == true",
      "principal.expiresInSeconds < 600",
      "'sre' in principal.groups",
    ),
    { nil: undefined },
  ),
});

function toYaml(rules: RuleSpec[]): string {
  if (rules.length === 0) return "rules: []\n";
  const lines = ["rules:"];
  rules.forEach((r, i) => {
    lines.push(`  - id: r${i}`, `    effect: ${r.effect}`);
    const match = Object.entries({
      methods: r.methods,
      servers: r.servers,
      tools: r.tools,
      tiers: r.tiers,
      authMethods: r.authMethods,
    }).filter(([, v]) => v !== undefined);
    if (match.length > 0) {
      lines.push("    match:");
      for (const [k, v] of match) lines.push(`      ${k}: ${JSON.stringify(v)}`);
    }
    if (r.when) lines.push(`    when: ${JSON.stringify(r.when)}`);
  });
  return `${lines.join("\n")}\n`;
}

const inputArb = fc
  .record({
    method: fc.constantFrom(...METHODS, "prompts/get"),
    server: fc.constantFrom(...SERVERS, "other"),
    tool: fc.constantFrom(...TOOLS, "unknown_tool"),
    tier: fc.constantFrom("read", "write", "destructive") as fc.Arbitrary<"read" | "write" | "destructive">,
    auth: fc.constantFrom("api_key", "oauth") as fc.Arbitrary<"api_key" | "oauth">,
    expires: fc.option(fc.integer({ min: 0, max: 7200 }), { nil: null }),
    force: fc.option(fc.boolean(), { nil: undefined }),
    groups: fc.subarray(["sre", "dev"]),
  })
  .map((x) =>
    makeInput({
      action: { method: x.method },
      resource: { server: x.server, name: x.tool, tier: x.tier },
      principal: { method: x.auth, expiresInSeconds: x.expires, groups: x.groups },
      context: { arguments: x.force === undefined ? {} : { force: x.force } },
    }),
  );

describe("policy attacks", () => {
  it("never allows a request no rule allows", () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 12 }), inputArb, (rules, input) => {
        const p = compilePolicy(policy(toYaml(rules)));
        const { decision, trace } = p.explain(input);
        assert.deepEqual(p.decide(input), decision, "decide and explain agree");
        const allowing = trace.filter((t) => t.matched && t.effect === "allow").map((t) => t.id);
        if (allowing.length === 0) assert.notEqual(decision.effect, "allow");
        if (decision.effect === "allow") assert.deepEqual(decision.ruleIds, allowing);
        if (trace.every((t) => !t.matched)) {
          assert.deepEqual(
            [decision.effect, decision.ruleIds, decision.reason],
            ["deny", [], "no rule allows this"],
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  it("deny always wins over any allow or review", () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 12 }), inputArb, fc.nat(), (rules, input, at) => {
        // Add a deny rule that surely matches, anywhere among the others.
        const all = [...rules];
        all.splice(at % (rules.length + 1), 0, { effect: "deny", tools: [input.resource.name ?? "*"] });
        const p = compilePolicy(policy(toYaml(all)));
        const d = p.decide(input);
        assert.equal(d.effect, "deny");
        const { trace } = p.explain(input);
        assert.deepEqual(
          d.ruleIds,
          trace.filter((t) => t.matched && t.effect === "deny").map((t) => t.id),
        );
      }),
      { numRuns: 400 },
    );
  });

  const INVISIBLE = [
    "\u200B",
    "\u200C",
    "\u200D",
    "\u2060",
    "\uFEFF",
    "\u00AD",
    "\u180E",
    "\u034F",
    "\uFE0F",
  ];
  const fullwidth = (c: string) => (c >= "!" && c <= "~" ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c);
  const mathBold = (c: string) =>
    c >= "a" && c <= "z" ? String.fromCodePoint(0x1d41a + c.charCodeAt(0) - 97) : c;
  const LOOKALIKE: Record<string, string> = {
    a: "\u0430",
    e: "\u0435",
    o: "\u043e",
    p: "\u0440",
    c: "\u0441",
    i: "\u0456",
    x: "\u0445",
  };

  /** One disguise per character: case, fullwidth, mathematical bold, Cyrillic look-alike, plus invisibles. */
  const disguised = (name: string) =>
    fc
      .array(fc.tuple(fc.nat(4), fc.option(fc.constantFrom(...INVISIBLE), { nil: undefined })), {
        minLength: name.length,
        maxLength: name.length,
      })
      .map((ops) =>
        [...name]
          .map((c, i) => {
            const [kind, inv] = ops[i] ?? [0, undefined];
            const forms = [c, c.toUpperCase(), fullwidth(c), mathBold(c), LOOKALIKE[c] ?? c.toUpperCase()];
            return (forms[kind] ?? c) + (inv ?? "");
          })
          .join(""),
      );

  it("a tool name differing only by case, compatibility form or invisible characters cannot escape a deny rule", () => {
    const p = compilePolicy(
      policy(`rules:
  - { id: allow-all, effect: allow, match: { tools: ["*"] } }
  - { id: no-delete, effect: deny, match: { tools: ["delete_*"], servers: [github] } }
  - { id: no-drop, effect: deny, match: { tools: [drop_table] } }
  - { id: review-exec, effect: review, match: { tools: [exec] } }`),
    );
    const base = fc.constantFrom("delete_repo", "delete_branch", "drop_table", "exec");
    fc.assert(
      fc.property(
        base.chain((b) => fc.tuple(fc.constant(b), disguised(b))),
        fc.constantFrom("github", "GitHub", "git\u200Bhub", "ｇｉｔｈｕｂ"),
        ([b, name], server) => {
          const d = p.decide(makeInput({ resource: { name, server } }));
          assert.equal(d.effect, b === "exec" ? "review" : "deny", `${JSON.stringify(name)} on ${server}`);
        },
      ),
      { numRuns: 1000 },
    );
    // A Unicode ligature and the Kelvin sign are compatibility forms too.
    assert.equal(p.decide(makeInput({ resource: { name: "drop_table\uFB01".slice(0, 10) } })).effect, "deny");
    assert.equal(p.decide(makeInput({ resource: { name: "DELETE_REPO" } })).effect, "deny");
  });

  it("allow rules match the exact name only, so a disguised name gains no allow", () => {
    const p = compilePolicy(
      policy(`rules:\n  - { id: allow-get, effect: allow, match: { tools: [get_issue] } }\n`),
    );
    fc.assert(
      fc.property(disguised("get_issue"), (name) => {
        assert.equal(
          p.decide(makeInput({ resource: { name } })).effect,
          name === "get_issue" ? "allow" : "deny",
        );
      }),
      { numRuns: 500 },
    );
  });
});
