/**
 * The 2025-x GET stream and DELETE run the pipeline's stream table: authenticated, scoped,
 * limited and recorded like a POST, then handed to the upstream.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PipelineHarness, SERVER } from "./harness.js";

describe("pipeline: GET and DELETE on /mcp/<server>", () => {
  const h = new PipelineHarness();
  let key = "";
  before(async () => {
    await h.start();
    key = await h.key("streams");
  });
  after(() => h.stop());

  const send = (method: "GET" | "DELETE", credential: string | null) =>
    fetch(`${h.url}/mcp/${SERVER}`, {
      method,
      headers: credential === null ? {} : { authorization: `Bearer ${credential}` },
    });

  it("refuses a GET stream without a credential with 401, recorded as deny", async () => {
    const n = h.audit.records.length;
    const res = await send("GET", null);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32001);
    assert.equal(h.audit.records.length, n + 1);
    assert.equal(h.audit.records[n]?.decision, "deny");
    assert.equal(h.audit.records[n]?.reason, "no credential presented");
  });

  it("hands an authenticated DELETE to the upstream and records it as allowed", async () => {
    const n = h.audit.records.length;
    const res = await send("DELETE", key);
    assert.equal(res.status, 204);
    assert.equal(h.audit.records.length, n + 1);
    assert.equal(h.audit.records[n]?.decision, "allow");
    assert.equal(h.audit.records[n]?.reason, "DELETE stream");
  });
});
