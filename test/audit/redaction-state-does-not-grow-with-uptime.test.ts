/**
 * Throughput decayed with uptime under the default `audit.arguments: redacted`: secretlint's
 * profiler kept every performance mark it made (about 60 per scan) and scanned them all on
 * each new one, so a redaction batch cost 2.8 ms fresh and 163 ms after 4,000 batches. Masking
 * must cost the same on day 30 as in minute 1: here, the state a scan leaves behind is
 * counted (not timed) after many batches, and must not grow.
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { describe, it } from "node:test";
import { secretLintProfiler } from "@secretlint/profiler";
import { createArgumentsRedactor, MASKED } from "../../src/audit/redact.js";

const GITHUB_TOKEN = `ghp_${"A1b2C3d4E5".repeat(3)}123456`;

describe("redaction cost does not grow with uptime", () => {
  it("leaves no secretlint profiler marks or entries behind, however many batches it masks", async () => {
    const r = await createArgumentsRedactor("redacted");
    const batch = Array.from({ length: 8 }, (_, i) => ({
      command: `curl -H 'Authorization: token ${GITHUB_TOKEN}' https://api.github.com/${i}`,
      note: `call ${i} of the soak`,
    }));
    // Positive control: the scanner really runs and masks in every batch.
    const [first] = await r.redact(batch);
    assert.ok(first?.includes(MASKED) && !first.includes(GITHUB_TOKEN), String(first));
    const marksBefore = performance.getEntriesByType("mark").length;
    const entriesBefore = (await secretLintProfiler.getEntries()).length;
    const measuresBefore = (await secretLintProfiler.getMeasures()).length;
    for (let i = 0; i < 500; i++) {
      const out = await r.redact(batch);
      assert.ok(!out.some((o) => o?.includes(GITHUB_TOKEN)));
    }
    // Let any observer callback the marks would have queued run before counting.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(performance.getEntriesByType("mark").length, marksBefore, "performance timeline marks");
    assert.equal((await secretLintProfiler.getEntries()).length, entriesBefore, "profiler entries");
    assert.equal((await secretLintProfiler.getMeasures()).length, measuresBefore, "profiler measures");
  });
});
