/**
 * Regression: a decision id beginning with `-` (base64url uses it) was read by the CLI as an
 * unknown option when pasted after `--decision-id` or `policy explain --decision`, so a
 * refused user's id could not be looked up. Decision ids never begin with `-`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { newEventDecisionId } from "../../src/audit/records.js";
import { newDecisionId } from "../../src/pipeline/callState.js";

describe("decision ids can be pasted into a command line", () => {
  it("no event decision id begins with '-' (10,000 drawn; 1 in 64 did before)", () => {
    for (let i = 0; i < 10_000; i++) {
      const id = newEventDecisionId();
      assert.ok(!id.startsWith("-"), id);
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/);
    }
  });

  it("request decision ids do not begin with '-' either", () => {
    for (let i = 0; i < 1000; i++) assert.ok(!newDecisionId().startsWith("-"));
  });
});
