/**
 * Issue 10, item 14: a tool's risk tier learnt from a `tools/list` on one replica must reach
 * every replica. A replica that never saw the server's list treats the tool as unknown, and
 * an unknown tool is destructive (src/authz/toolCatalogue.ts): under the default policy pack
 * an API key's call to a read-only tool was refused 403 on every other replica until it was
 * restarted. New pins now travel through the store and its change feed like changed ones.
 *
 * Two real `portcullis start` processes share one PostgreSQL store and server secret; each
 * has its own copy of a stdio upstream that logs every call it receives.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import {
  cleanup,
  DEFAULT_POLICY_PACK,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";

const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const SECRET_VAR = "PORTCULLIS_TIERS_TEST_SECRET";
const TOOLS: ToolFile = {
  tools: [{ name: "read_note", description: "Reads a note.", annotations: { readOnlyHint: true } }],
};

function received(callsFile: string): string[] {
  return readFileSync(callsFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { arguments: { tag: string } }).arguments.tag);
}

describe("tool risk tiers across replicas", { skip: await postgresSkip() }, () => {
  let db: TestDatabase;
  let dir: string;
  const replicas: Record<string, { gw: RunningGateway; calls: string }> = {};

  before(async () => {
    db = await createTestDatabase();
    dir = tempDir("portcullis-tiers-");
    const tools = join(dir, "tools.json");
    writeFileSync(tools, JSON.stringify(TOOLS));
    const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };
    for (const name of ["a", "b"]) {
      const calls = join(dir, `calls-${name}.jsonl`);
      writeFileSync(calls, "");
      const gw = await startGateway({
        startTimeoutMs: 90_000,
        env,
        config: {
          store: db.url,
          serverSecret: { env: SECRET_VAR },
          policy: { paths: [DEFAULT_POLICY_PACK] },
          servers: {
            notes: {
              transport: "stdio",
              command: process.execPath,
              args: [MUTABLE_SERVER, tools, "--calls", calls],
            },
          },
        },
      });
      replicas[name] = { gw, calls };
    }
  });
  after(async () => {
    for (const r of Object.values(replicas)) await r.gw.stop();
    await db?.drop();
    if (dir) cleanup(dir);
  });

  it("a read-only tool listed on one replica is not refused as unknown (destructive) on another", async (t) => {
    const a = replicas.a as { gw: RunningGateway; calls: string };
    const b = replicas.b as { gw: RunningGateway; calls: string };
    const key = (await a.gw.cli(["keys", "create", "--name", "agent"])).key as string;
    const call = (gw: RunningGateway, tag: string, id: number) => {
      const { body, headers } = modern(id, "tools/call", { name: "read_note", arguments: { tag } }, key);
      return rpc(gw.endpoint("notes"), body, headers);
    };

    // Control: before any replica has seen the list, the tool is unknown, so destructive, and
    // an API key's call to it is refused without reaching the upstream.
    const unknown = await call(b.gw, "before-any-list", 1);
    assert.equal((unknown.json.error as { code?: number } | undefined)?.code, -32040, unknown.text);
    assert.deepEqual(received(b.calls), [], "the refused call never reached B's upstream");

    // Replica A lists the tools: read_note is pinned as read-only in the shared store.
    const list = modern(2, "tools/list", {}, key);
    const listed = await rpc(a.gw.endpoint("notes"), list.body, list.headers);
    assert.equal(listed.status, 200, listed.text);

    // B never lists; it learns the tier from the change feed and allows the read.
    let attempts = 0;
    const allowed = await waitFor("replica B to allow the read-only tool", async () => {
      attempts++;
      const res = await call(b.gw, `after-list-${attempts}`, 10 + attempts);
      return res.json.result !== undefined ? res : undefined;
    });
    assert.match(allowed.text, /ran read_note/);
    t.diagnostic(`replica B allowed the call on attempt ${attempts} after A's tools/list`);
    assert.deepEqual(
      received(b.calls),
      [`after-list-${attempts}`],
      "only the allowed call reached B's upstream",
    );
    assert.deepEqual(received(a.calls), [], "A forwarded no call");
  });
});
