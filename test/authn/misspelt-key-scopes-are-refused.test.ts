/**
 * A key whose scope names no configured server, or a tool its server is known not to have,
 * could do nothing: `checkKeyScopes` (src/authn/keyLifecycle.ts, run by `keys create` and the
 * console's key form) refuses it, suggesting the closest spelling, and only warns about what
 * it cannot know yet.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkKeyScopes, KeyInputError } from "../../src/authn/keyLifecycle.js";

const SERVERS = ["github", "jira", "demo"];
const TOOLS: Record<string, string[]> = { github: ["create_issue", "list_issues", "search_code"] };
const toolsOf = (server: string) => TOOLS[server] ?? null;
const check = (scopes: string[]) => checkKeyScopes(scopes, SERVERS, toolsOf);

describe("key scopes are checked against the configured servers and known tools", () => {
  it("accepts servers, known tools, prefixes that match and '*'", () => {
    assert.deepEqual(check(["github", "github:create_issue", "github:list_*", "*", "jira:*"]), []);
  });

  it("refuses a misspelt server, naming the configured ones and the closest spelling", () => {
    assert.throws(
      () => check(["demo", "githib:create_issue"]),
      (err: unknown) =>
        err instanceof KeyInputError &&
        err.message ===
          "--servers 'githib:create_issue': no server named 'githib' is configured (did you mean 'github'?); configured servers: github, jira, demo",
    );
  });

  it("suggests nothing when no name is close", () => {
    assert.throws(
      () => check(["salesforce"]),
      /no server named 'salesforce' is configured; configured servers/,
    );
  });

  it("refuses a misspelt tool of a server whose tools are known", () => {
    assert.throws(
      () => check(["github:create_isue"]),
      /--servers 'github:create_isue': server github has no tool 'create_isue' \(did you mean 'create_issue'\?\); its tools: create_issue, list_issues, search_code/,
    );
  });

  it("warns, without refusing, about tools of a server not listed yet and prefixes that match nothing", () => {
    const warnings = check(["jira:create_ticket", "github:delete_*"]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] ?? "", /'jira:create_ticket': the tools of jira are not known yet/);
    assert.match(warnings[1] ?? "", /'github:delete_\*' matches none of the tools github is known to have/);
  });

  it("refuses a malformed scope before looking it up", () => {
    assert.throws(() => check(["Git Hub"]), /--servers: 'Git Hub' is not a scope/);
  });
});
