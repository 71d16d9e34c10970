/**
 * Separation of duties, pure core: the approver is compared with the caller and with the owner
 * of the caller's key under every name they are known by (src/review/separationOfDuties.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { conflictOfInterest } from "../../src/review/separationOfDuties.js";

const call = { principalId: "key:AbCdEfGhIjKl", principalName: "deploy-bot" };
const consoleOwner = { principal: "oauth:https://gw.example#u_42", name: "alice" };
const cliOwner = { principal: "operator:alice", name: "alice" };

describe("approval by the owner of the caller's key", () => {
  it("refuses the admin who created the key in the console, by principal id or by name", () => {
    assert.equal(
      conflictOfInterest(call, consoleOwner, { name: "alice", principalId: "oauth:https://gw.example#u_42" }),
      "owner",
    );
    assert.equal(
      conflictOfInterest(call, consoleOwner, { name: "alice", principalId: "operator:alice" }),
      "owner",
    );
  });

  it("refuses the operator who created the key with the CLI, even in look-alike letters", () => {
    assert.equal(
      conflictOfInterest(call, cliOwner, { name: "alice", principalId: "operator:alice" }),
      "owner",
    );
    assert.equal(conflictOfInterest(call, cliOwner, { name: "ＡＬＩＣＥ", principalId: null }), "owner");
  });

  it("refuses the caller first, and lets anyone else decide", () => {
    assert.equal(conflictOfInterest(call, cliOwner, { name: "deploy-bot", principalId: null }), "caller");
    assert.equal(conflictOfInterest(call, cliOwner, { name: "bob", principalId: "operator:bob" }), null);
    assert.equal(conflictOfInterest(call, null, { name: "alice", principalId: "operator:alice" }), null);
  });
});
