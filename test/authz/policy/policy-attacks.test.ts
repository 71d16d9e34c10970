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

// ── An independent oracle, written from the semantics in docs/policy.md and compile.ts's
// header, not from the engine: for the ASCII names generated here, deny and review rules
// compare names case-insensitively and allow rules exactly; a `when` that cannot be evaluated
// matches for deny and not for allow or review.

/** `*` matches any run of characters; everything else literally. */
function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
    "s",
  );
  return re.test(name);
}

type Input = ReturnType<typeof makeInput>;

/** The value of one of ruleArb's `when` conditions, or "error" when CEL cannot evaluate it. */
function whenValue(when: string, input: Input): boolean | "error" {
  const expires = input.principal.expiresInSeconds;
  switch (when) {
    case "principal.expiresInSeconds != null":
      return expires !== null;
    case "context.arguments.force == true": {
      const args = input.context.arguments as Record<string, unknown>;
      return "force" in args ? args.force === true : "error";
    }
    case "principal.expiresInSeconds < 600":
      return expires === null ? "error" : expires < 600;
    case "'sre' in principal.groups":
      return input.principal.groups.includes("sre");
    default:
      throw new Error(`the oracle does not know ${when}`);
  }
}

function oracleMatches(rule: RuleSpec, input: Input): boolean {
  const fold = rule.effect === "allow" ? (s: string) => s : (s: string) => s.toLowerCase();
  const names = (patterns: string[] | undefined, name: string | null) =>
    patterns === undefined || (name !== null && patterns.some((p) => globMatches(fold(p), fold(name))));
  if (rule.methods && !rule.methods.includes(input.action.method)) return false;
  if (!names(rule.servers, input.resource.server)) return false;
  if (!names(rule.tools, input.resource.name)) return false;
  if (rule.tiers && !rule.tiers.includes(input.resource.tier as "read")) return false;
  if (rule.authMethods && !rule.authMethods.includes(input.principal.method as "api_key")) return false;
  if (rule.when === undefined) return true;
  const w = whenValue(rule.when, input);
  return w === "error" ? rule.effect === "deny" : w;
}

/** Deny overrides review overrides allow; nothing matching is a deny with no rule ids. */
function oracleDecision(rules: RuleSpec[], input: Input): { effect: Effect; ruleIds: string[] } {
  const matching = (effect: Effect) =>
    rules.flatMap((r, i) => (r.effect === effect && oracleMatches(r, input) ? [`r${i}`] : []));
  for (const effect of ["deny", "review", "allow"] as const) {
    const ids = matching(effect);
    if (ids.length > 0) return { effect, ruleIds: ids };
  }
  return { effect: "deny", ruleIds: [] };
}

describe("policy attacks", () => {
  it("never allows a request no rule allows (checked against an independent oracle)", () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 12 }), inputArb, (rules, input) => {
        const p = compilePolicy(policy(toYaml(rules)));
        const decision = p.decide(input);
        const expected = oracleDecision(rules, input);
        assert.deepEqual({ effect: decision.effect, ruleIds: decision.ruleIds }, expected, toYaml(rules));
        if (expected.ruleIds.length === 0) assert.equal(decision.reason, "no rule allows this");
        assert.deepEqual(p.explain(input).decision, decision, "decide and explain agree");
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
    assert.equal(p.decide(makeInput({ resource: { name: "DELETE_REPO" } })).effect, "deny");
  });

  it("a Unicode ligature or the Kelvin sign in a tool name cannot escape a deny rule", () => {
    const p = compilePolicy(
      policy(`rules:
  - { id: allow-all, effect: allow, match: { tools: ["*"] } }
  - { id: no-profile-wipe, effect: deny, match: { tools: [wipe_profile] } }
  - { id: no-kill, effect: deny, match: { tools: ["kill_*"] } }`),
    );
    const decide = (name: string) => p.decide(makeInput({ resource: { name } }));
    // Controls: the plain names are denied, an unrelated name is allowed.
    assert.equal(decide("wipe_profile").effect, "deny");
    assert.equal(decide("kill_process").effect, "deny");
    assert.equal(decide("list_profiles").effect, "allow");
    // U+FB01 LATIN SMALL LIGATURE FI is NFKC-equivalent to "fi".
    for (const name of ["wipe_pro\uFB01le", "WIPE_PRO\uFB01LE", "wipe_pro\uFB01le\u200B"]) {
      assert.notEqual(name, "wipe_profile");
      assert.deepEqual(
        [decide(name).effect, decide(name).ruleIds],
        ["deny", ["no-profile-wipe"]],
        JSON.stringify(name),
      );
    }
    // U+212A KELVIN SIGN is NFKC-equivalent to "K", which case-folds to "k".
    for (const name of ["\u212Aill_process", "\u212AILL_PROCESS", "\u212Aill_\u212Ai\u212Aer"]) {
      assert.deepEqual(
        [decide(name).effect, decide(name).ruleIds],
        ["deny", ["no-kill"]],
        JSON.stringify(name),
      );
    }
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
