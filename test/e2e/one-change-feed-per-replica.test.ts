/**
 * Issue 11: one change-feed connection per replica. Every cache that follows the store's
 * change feed (API keys, machine clients, tool pins, approvals) shares the replica's one
 * PostgreSQL LISTEN connection, counted in `pg_stat_activity` while all four are in use; a
 * revocation made through one replica still reaches the other; and a listener the server
 * cuts off comes back as one connection, not one per cache.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { LISTENER_APPLICATION_NAME } from "../../src/store/postgres.js";
import { cleanup, createKey, modern, type RunningGateway, rpc } from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { waitFor } from "../helpers/wait.js";
import { approvals, startReviewGateway } from "../review/fixtures.js";

const SECRET_VAR = "PORTCULLIS_FEED_TEST_SECRET";

describe("one change-feed connection per gateway replica on PostgreSQL", {
  skip: await postgresSkip(),
}, () => {
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway | undefined;
  let key: string;
  let keyId: string;
  let rpcId = 1;
  const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };
  const extra = () => ({
    environment: "dev",
    store: db.url,
    serverSecret: { env: SECRET_VAR },
    oauth: { mode: "builtin" },
  });

  /** The listener connections of this suite's database. */
  const listeners = async (): Promise<number> => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const r = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
        [LISTENER_APPLICATION_NAME],
      );
      return r.rows[0]?.n ?? -1;
    } finally {
      await client.end();
    }
  };
  const call = (gw: RunningGateway, method: string, params: Record<string, unknown>, credential: string) => {
    const m = modern(rpcId++, method, params, credential);
    return rpc(gw.endpoint("demo"), m.body, m.headers);
  };

  before(async () => {
    // `approvals approve` (test/review/fixtures.ts) runs the CLI with this process's environment.
    process.env[SECRET_VAR] = env[SECRET_VAR];
    db = await createTestDatabase();
    a = await startReviewGateway(extra(), env);
    ({ key, id: keyId } = await createKey(a, "feed-agent"));
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    if (b) cleanup(b.dir);
    if (a) cleanup(a.dir);
    await db?.drop();
  });

  it("holds exactly one LISTEN connection with keys, machine clients, tool pins and approvals in use", async () => {
    // API key, and tool pins: tools/list pins the demo server's tools.
    const listed = await call(a, "tools/list", {}, key);
    assert.equal(listed.status, 200, listed.text);
    // A machine client and its client_credentials token.
    const client = await a.cli(["clients", "create", "--name", "feed-job", "--auth", "client_secret_basic"]);
    const basic = Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64");
    const tokenRes = await fetch(`${a.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${basic}` },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        resource: a.endpoint("demo"),
        scope: "mcp",
      }),
    });
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;
    assert.equal(tokenRes.status, 200);
    assert.equal((await call(a, "tools/list", {}, token)).status, 200, "the machine client's token works");
    // An approval: a call sent to review, approved through the CLI, then forwarded.
    const added = await call(
      a,
      "tools/call",
      { name: "add_note", arguments: { title: "t", body: "b" } },
      key,
    );
    const note = (
      JSON.parse((added.json.result as { content: { text: string }[] }).content[0]?.text ?? "{}") as {
        note: { id: string };
      }
    ).note.id;
    const held = await call(a, "tools/call", { name: "delete_note", arguments: { id: note } }, key);
    const result = held.json.result as Record<string, unknown>;
    assert.equal(result.resultType, "input_required", held.text);
    const approvalId = (result._meta as Record<string, { approvalId: string }>)["portcullis/review"]
      ?.approvalId;
    await approvals(a, ["approve", approvalId as string, "--by", "feed-operator"]);
    const done = await call(
      a,
      "tools/call",
      { name: "delete_note", arguments: { id: note }, requestState: result.requestState },
      key,
    );
    assert.equal(done.status, 200, done.text);
    assert.notEqual((done.json.result as { isError?: boolean }).isError, true, done.text);

    assert.equal(await listeners(), 1, "one replica, one listener connection");

    b = await startReviewGateway(extra(), env);
    assert.equal((await call(b, "tools/list", {}, key)).status, 200);
    assert.equal(await listeners(), 2, "two replicas, one listener connection each");
  });

  it("a key revoked through one replica's CLI is refused by the other", async () => {
    assert.ok(b, "the second replica runs");
    const victim = await createKey(a, "feed-victim");
    assert.equal((await call(b, "tools/list", {}, victim.key)).status, 200);
    await a.cli(["keys", "revoke", victim.id]);
    await waitFor(
      "replica B to refuse the revoked key",
      async () => (await call(b as RunningGateway, "tools/list", {}, victim.key)).status === 401,
    );
    assert.equal((await call(a, "tools/list", {}, victim.key)).status, 401);
    assert.equal((await call(b, "tools/list", {}, key)).status, 200, "other keys still work");
  });

  it("listeners cut off by the server come back as one connection per replica", async () => {
    await db.admin(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = '${LISTENER_APPLICATION_NAME}'`,
    );
    await waitFor(
      "both replicas to serve again",
      async () => {
        const [onA, onB] = await Promise.all([
          call(a, "tools/list", {}, key),
          call(b as RunningGateway, "tools/list", {}, key),
        ]);
        return onA.status === 200 && onB.status === 200;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(await listeners(), 2);
    await a.cli(["keys", "revoke", keyId]);
    await waitFor(
      "replica B to hear of a revocation after reconnecting",
      async () => (await call(b as RunningGateway, "tools/list", {}, key)).status === 401,
    );
  });
});
