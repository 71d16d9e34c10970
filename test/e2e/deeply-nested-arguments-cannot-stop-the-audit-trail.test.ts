/**
 * The attack: any key holder (even one whose calls policy refuses) sent a tools/call whose
 * arguments nested 100,000 arrays deep (~200 KB, far under the body limit). The audit writer
 * failed on that record and retried it forever, so every later call was forwarded but never
 * recorded, and the caller got 500 for a bad request.
 *
 * Here a real gateway in front of a real upstream gets that call on a
 * read-tier and a write-tier tool, then its siblings (a tool name holding NUL and an unpaired
 * surrogate, arguments just under the body limit); each is answered with a 4xx or served,
 * the nested call never reaches the upstream, and every later call is forwarded and
 * recorded, on SQLite and on PostgreSQL (which refuses NUL in text), with the chain intact.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import { modern, type RunningGateway, rpc, runCli, startGateway } from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

interface AuditRow {
  decision: string;
  tool: string | null;
  reason: string;
  arguments?: unknown;
}

function nestedArrays(depth: number): string {
  return `${"[".repeat(depth)}1${"]".repeat(depth)}`;
}

/** A 2026-07-28 tools/call whose `arguments` JSON text is given verbatim. */
function rawCall(id: number, tool: string, argumentsJson: string, key: string) {
  const call = modern(id, "tools/call", { name: tool, arguments: { placeholder: true } }, key);
  const body = JSON.stringify(call.body).replace('{"placeholder":true}', argumentsJson);
  return { body, headers: call.headers };
}

async function auditRows(gw: RunningGateway): Promise<AuditRow[]> {
  const r = await runCli(["audit", "search", "--limit", "1000", "--config", gw.configFile, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRow);
}

/**
 * Waits until the group-committed records are in the store. A writer that never writes them
 * (the bug) is caught by the test's hang guard, {@link HANG_GUARD}, not by a speed bound.
 */
async function auditRowsWhen(gw: RunningGateway, ready: (rows: AuditRow[]) => boolean): Promise<AuditRow[]> {
  for (;;) {
    const rows = await auditRows(gw);
    if (ready(rows)) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Only so a wedged writer fails the test instead of hanging the suite. */
const HANG_GUARD = { timeout: 120_000 };

const stores = [
  { name: "sqlite", skip: false as string | false },
  { name: "postgres", skip: await postgresSkip() },
];

for (const store of stores) {
  describe(`deeply nested arguments cannot stop the audit trail (${store.name})`, {
    skip: store.skip,
  }, () => {
    let upstream: HttpUpstream;
    let gw: RunningGateway;
    let db: TestDatabase | null = null;
    let key: string;

    before(async () => {
      upstream = await startHttpUpstream();
      db = store.name === "postgres" ? await createTestDatabase() : null;
      gw = await startGateway({
        config: {
          environment: "test",
          ...(db ? { store: db.url } : {}),
          servers: {
            reads: { transport: "http", url: upstream.url, tools: { echo: { tier: "read" } } },
            writes: { transport: "http", url: upstream.url, tools: { echo: { tier: "write" } } },
          },
        },
      });
      key = (await gw.cli(["keys", "create", "--name", "nested"])).key as string;
    });
    after(async () => {
      await gw?.stop();
      await upstream?.close();
      await db?.drop();
    });

    const upstreamCallIds = () =>
      upstream.requests
        .filter((r) => (r.body as { method?: string } | undefined)?.method === "tools/call")
        .map((r) => (r.body as { id: unknown }).id);

    it(
      "refuses arguments nested 100,000 arrays deep with 400 and -32600, and records every later call",
      HANG_GUARD,
      async () => {
        const deep = nestedArrays(100_000);
        for (const [id, server] of [
          [101, "reads"],
          [102, "writes"],
        ] as const) {
          const call = rawCall(id, "echo", `{"text":"deep","deep":${deep}}`, key);
          const res = await rpc(gw.endpoint(server), call.body, call.headers);
          assert.equal(res.status, 400, `${server}: ${res.text}`);
          assert.equal((res.json.error as { code: number }).code, -32600);
          assert.equal(res.json.id, id);
        }
        // Positive control: the same setup forwards and records ordinary calls on both tiers.
        for (const [id, server] of [
          [103, "reads"],
          [104, "writes"],
        ] as const) {
          const call = modern(
            id,
            "tools/call",
            { name: "echo", arguments: { text: `after-${server}` } },
            key,
          );
          const res = await rpc(gw.endpoint(server), call.body, call.headers);
          assert.equal(res.status, 200, `${server}: ${res.text}`);
        }
        const ids = upstreamCallIds();
        assert.ok(!ids.includes(101) && !ids.includes(102), "the nested calls never reached the upstream");
        assert.ok(ids.includes(103) && ids.includes(104), "the later calls did");
        const rows = await auditRowsWhen(
          gw,
          (rs) =>
            rs.filter((r) => r.reason.includes("nested deeper")).length === 2 &&
            rs.filter((r) => r.decision === "allow" && r.tool === "echo").length >= 2,
        );
        const later = rows
          .filter((r) => r.decision === "allow" && r.tool === "echo")
          .map((r) => (r.arguments as { text?: string }).text);
        assert.deepEqual(later.sort(), ["after-reads", "after-writes"]);
        assert.ok(
          !gw.logs.some((l) => String(l.msg).startsWith("audit write failed")),
          "the audit writer never failed",
        );
      },
    );

    it(
      "records a tool name holding NUL and an unpaired surrogate, and arguments near the body limit, and the calls after them",
      HANG_GUARD,
      async () => {
        const odd = modern(201, "tools/call", { name: "echo\u0000\ud800", arguments: { text: "odd" } }, key);
        // No HTTP header can carry that name: the request goes without Mcp-Name (and is refused for it).
        delete odd.headers["mcp-name"];
        const oddRes = await rpc(gw.endpoint("reads"), odd.body, odd.headers);
        assert.ok(oddRes.status >= 400 && oddRes.status < 500, `${oddRes.status}: ${oddRes.text}`);
        const huge = modern(
          202,
          "tools/call",
          { name: "echo", arguments: { text: "x".repeat(3_000_000) } },
          key,
        );
        const hugeRes = await rpc(gw.endpoint("reads"), huge.body, huge.headers);
        assert.equal(hugeRes.status, 200, hugeRes.text.slice(0, 200));
        const later = modern(203, "tools/call", { name: "echo", arguments: { text: "after-odd" } }, key);
        assert.equal((await rpc(gw.endpoint("writes"), later.body, later.headers)).status, 200);
        const rows = await auditRowsWhen(gw, (rs) =>
          rs.some((r) => (r.arguments as { text?: string } | null)?.text === "after-odd"),
        );
        assert.ok(
          rows.some((r) => r.tool === "echo\ufffd\ufffd" && r.decision !== "allow"),
          "the refused call is recorded, its name as the store can keep it",
        );
        assert.ok(
          rows.some((r) =>
            /^\[sha256:[0-9a-f]{64} 3000000 characters\]$/.test(
              String((r.arguments as { text?: string } | null)?.text),
            ),
          ),
          "the huge argument is kept as its hash",
        );
        const verify = await runCli(["audit", "verify", "--json", "--config", gw.configFile]);
        assert.equal(verify.code, 0, verify.stdout + verify.stderr);
        assert.equal((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
      },
    );
  });
}
