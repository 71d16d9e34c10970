import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePolicy } from "../../../src/authz/policy/compile.js";
import { PolicyError } from "../../../src/authz/policy/types.js";

function errorOf(files: Array<{ path: string; text: string }>): PolicyError {
  try {
    compilePolicy(files);
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected PolicyError, got ${err}`);
    return err;
  }
  assert.fail("compiled");
}

const one = (text: string) => [{ path: "p/a.yaml", text }];

describe("policy errors name file and line", () => {
  it("bad YAML", () => {
    const e = errorOf(one("rules:\n  - id: a\n    effect: allow\n   bad: [\n"));
    assert.equal(e.file, "p/a.yaml");
    assert.equal(e.line, 4);
    assert.match(e.message, /^p\/a\.yaml:4: invalid YAML/);
  });

  it("unknown key, at the key's own line, listing the allowed keys", () => {
    const e = errorOf(one("rules:\n  - id: a\n    effect: allow\n    match:\n      tool: [x]\n"));
    assert.equal(e.line, 5);
    assert.match(
      e.detail,
      /^unknown key 'tool' in rule 'a' match: did you mean 'tools'\? \(allowed: methods, servers, tools/,
    );
    const top = errorOf(one("rules: []\nextra: 1\n"));
    assert.equal(top.line, 2);
    assert.equal(top.detail, "unknown key 'extra' at the top level (allowed: rules)");
  });

  it("a misspelt required key (docs/policy.md's `efect:`) is named, with what it meant, not reported as the key it hides", () => {
    const e = errorOf([
      { path: "policies/foo.yaml", text: "rules:\n  - id: x\n    efect: allow\n    match: { tools: [a] }\n" },
    ]);
    assert.equal(
      e.message,
      "policies/foo.yaml:3: unknown key 'efect' in rule 'x': did you mean 'effect'? (allowed: id, description, effect, match, when, review)",
    );
    // A rule without a usable id is named by its position; a key like no allowed one gets no guess.
    const noId = errorOf(one("rules:\n  - effect: deny\n    colour: red\n"));
    assert.equal(noId.line, 3);
    assert.match(noId.detail, /^unknown key 'colour' in rules\[0\] \(allowed: /);
    const review = errorOf(one("rules:\n  - id: r\n    effect: review\n    review: { timeoutSecond: 5 }\n"));
    assert.match(
      review.detail,
      /^unknown key 'timeoutSecond' in rule 'r' review: did you mean 'timeoutSeconds'\?/,
    );
  });

  it("a wrong value", () => {
    const e = errorOf(one("rules:\n  - id: a\n    effect: permit\n"));
    assert.equal(e.line, 3);
    assert.match(e.detail, /^rules\[0\]\.effect: /);
    const r = errorOf(one("rules:\n  - id: a\n    effect: allow\n    review: { timeoutSeconds: 10 }\n"));
    assert.equal(r.line, 4);
    assert.match(r.detail, /only to effect: review/);
  });

  it("bad CEL: syntax, unknown variable, unknown field, type errors, non-bool", () => {
    const cases: Array<[string, RegExp]> = [
      ["principal.id == ", /CEL syntax/],
      ["user.id == 'x'", /unknown variable `user`/],
      ["principal.expiresInSecond != null", /unknown field `principal.expiresInSecond`/],
      ["principal.groups + 1 == 2", /cannot combine list and int/],
      ["principal.id == 3", /cannot compare string with int/],
      ["principal.id", /must yield a bool/],
      ["nosuch(principal.id)", /unknown function `nosuch`/],
    ];
    for (const [when, re] of cases) {
      const e = errorOf(one(`rules:\n  - id: a\n    effect: allow\n    when: "${when}"\n`));
      assert.equal(e.line, 4, when);
      assert.match(e.detail, re, when);
    }
    const block = errorOf(
      one(
        "rules:\n  - id: a\n    effect: allow\n    when: |\n      principal.id == 'x'\n      && resource.nme == 'y'\n",
      ),
    );
    assert.equal(block.line, 6);
  });

  it("duplicate rule id across files, pointing at both", () => {
    const e = errorOf([
      { path: "p/a.yaml", text: "rules:\n  - { id: same, effect: allow }\n" },
      { path: "p/b.yaml", text: "rules:\n  - id: other\n    effect: deny\n  - id: same\n    effect: deny\n" },
    ]);
    assert.deepEqual([e.file, e.line], ["p/b.yaml", 4]);
    assert.match(e.detail, /duplicate rule id "same" \(first defined at p\/a\.yaml:2\)/);
  });

  it("the version is a content hash: same text, same version; any change, a new one", () => {
    const a = compilePolicy(one("rules: []\n"));
    assert.equal(a.version, compilePolicy(one("rules: []\n")).version);
    assert.notEqual(a.version, compilePolicy(one("rules: [] # changed\n")).version);
    assert.deepEqual(a.sources, ["p/a.yaml"]);
  });
});
