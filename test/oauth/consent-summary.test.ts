/**
 * The consent screen tells the user which tools a grant unlocks (MCP security best practices,
 * "Confused Deputy Problem"), following the scope hierarchy: a broader scope implies the
 * narrower ones, never the reverse.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { summarizeConsent } from "../../src/oauth/consentSummary.js";

const GITHUB = {
  scopes: ["mcp:tools"],
  tools: { delete_repo: ["repo:admin"], create_issue: ["repo:write"] },
};

describe("consent summary", () => {
  it("names the tools a narrow grant leaves out", () => {
    assert.deepEqual(summarizeConsent(GITHUB, ["mcp:tools"]), {
      reachesServer: true,
      toolsUnlocked: [],
      toolsWithheld: ["create_issue", "delete_repo"],
    });
  });

  it("names the tools a scope of their own unlocks", () => {
    assert.deepEqual(summarizeConsent(GITHUB, ["mcp:tools", "repo:write"]).toolsUnlocked, ["create_issue"]);
  });

  it("treats a broader scope as granting every narrower one", () => {
    assert.deepEqual(summarizeConsent(GITHUB, ["mcp", "repo"]).toolsUnlocked, [
      "create_issue",
      "delete_repo",
    ]);
  });

  it("says nothing is reachable when the server's own scope is missing, whatever tool scopes are granted", () => {
    const summary = summarizeConsent(GITHUB, ["repo"]);
    assert.equal(summary.reachesServer, false);
    assert.deepEqual(summary.toolsUnlocked, []);
  });
});
