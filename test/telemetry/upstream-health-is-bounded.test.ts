/**
 * What upstream health keeps cannot grow with what a server writes or with how many replicas
 * ever ran: a chatty or hostile server's stderr is kept as its last lines (bounded in lines,
 * bytes and line length), and the published report keeps a bounded number of replicas.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import {
  HEALTH_LIMITS,
  OutputTail,
  publishReport,
  readReports,
  UpstreamHealth,
} from "../../src/telemetry/upstreamHealth.js";

class MemorySettings {
  values = new Map<string, string>();
  async getSetting(key: string) {
    return this.values.get(key);
  }
  async setSetting(key: string, value: string) {
    this.values.set(key, value);
  }
}

describe("upstream health is bounded", () => {
  it("keeps only the last lines of a server that writes megabytes to stderr", () => {
    const tail = new OutputTail();
    for (let i = 0; i < 100_000; i++) tail.push(`line ${i} ${"x".repeat(i % 1000)}`);
    const kept = tail.get();
    assert.ok(kept.length <= HEALTH_LIMITS.stderrLines);
    assert.ok(Buffer.byteLength(kept.join("")) <= HEALTH_LIMITS.stderrBytes);
    assert.ok(kept.every((l) => l.length <= HEALTH_LIMITS.lineChars));
    assert.match(kept.at(-1) as string, /^line 99999 /);
  });

  it("keeps a single line longer than the byte budget, clipped", () => {
    const tail = new OutputTail(20, 100, 240);
    tail.push("y".repeat(10_000));
    assert.equal(tail.get().length, 1);
    assert.equal((tail.get()[0] as string).length, 240);
  });

  it("publishes at most a bounded number of replicas, the most recent ones", async () => {
    const settings = new MemorySettings();
    for (let i = 0; i < 100; i++) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      await publishReport(settings, `replica-${i}`, { at, stopped: false, servers: {} });
    }
    const reports = await readReports(settings);
    assert.equal(reports.length, HEALTH_LIMITS.replicas);
    assert.equal(reports[0]?.replica, "replica-99");
  });

  it("masks a process's stderr and error before keeping them, and withholds them when masking fails", async () => {
    const log = pino({ level: "silent" });
    const masked = new UpstreamHealth(["a"], log, async (lines) =>
      lines.map((l) => l.replace(/secret\S*/, "[secret]")),
    );
    await masked.down("a", "initialize failed: answered secret-456", ["token secret-123"]);
    assert.deepEqual(masked.get("a")?.stderr, ["token [secret]"]);
    assert.equal(masked.get("a")?.lastError, "initialize failed: answered [secret]");
    const failing = new UpstreamHealth(["a"], log, async () => {
      throw new Error("scanner broke");
    });
    await failing.down("a", "exited with code 1", ["token secret-123"]);
    assert.deepEqual(failing.get("a")?.stderr, ["(1 lines withheld: secret masking failed)"]);
    assert.equal(failing.get("a")?.lastError, "(error withheld: secret masking failed)");
  });

  it("tracks only configured servers", async () => {
    const health = new UpstreamHealth(["a"], pino({ level: "silent" }), async (l) => [...l]);
    health.up("not-configured");
    await health.down("also-not", "x");
    assert.deepEqual(Object.keys(health.snapshot()), ["a"]);
  });

  it("keeps the published row within replicas × servers × 5 KB however much the servers write", async () => {
    const names = Array.from({ length: 10 }, (_, i) => `server-${i}`);
    const health = new UpstreamHealth(names, pino({ level: "silent" }), async (l) => [...l]);
    for (const name of names) {
      const tail = new OutputTail();
      for (let i = 0; i < 1000; i++) tail.push(`${name} ${"é".repeat(2000)}`);
      await health.down(name, "x".repeat(10_000), tail.get());
    }
    const settings = new MemorySettings();
    for (let r = 0; r < 40; r++)
      await publishReport(settings, `replica-${r}`, {
        at: new Date(Date.UTC(2026, 0, 1, 0, r)).toISOString(),
        stopped: false,
        servers: health.snapshot(),
      });
    const bytes = Buffer.byteLength(settings.values.get("upstream_health") as string);
    console.log(
      `# published row: ${bytes} bytes for ${HEALTH_LIMITS.replicas} replicas × ${names.length} servers`,
    );
    assert.ok(bytes <= HEALTH_LIMITS.replicas * names.length * 5 * 1024, `${bytes} bytes`);
  });
});
