/**
 * A task token after `tasks end` on another replica (issue 13, "Bad input and attacks", and
 * its first acceptance item): two real gateway processes share one PostgreSQL store and
 * server secret (B's publicUrl is A's URL, as behind one load balancer). An API key is
 * exchanged at A (RFC 8693) for a 15-minute task token limited to one tool; the token works
 * for that tool only, on both replicas; `portcullis tasks end` (the CLI, a third process)
 * ends the task and replica B refuses the very next request; `portcullis audit search --task`
 * shows every record of the task with its id and actor. A call budget holds across the
 * replicas: calls alternating between them pass exactly `budget` times.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { request } from "undici";
import {
  createKey,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { endTask, startTask } from "../helpers/tasks.js";
import {
  ACCESS_TOKEN_TYPE,
  claimsOf,
  exchange,
  registerExchangeClient,
  taskDetails,
} from "../helpers/tokenExchange.js";
import { waitFor } from "../helpers/wait.js";

const SECRET_VAR = "PORTCULLIS_TASK_REPLICA_SECRET";

describe("task tokens across gateway replicas sharing a PostgreSQL store", {
  skip: await postgresSkip(),
}, () => {
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;
  let bOrigin: string;
  let publicHost: string;
  let keyId: string;
  let id = 1;
  const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };

  before(async () => {
    db = await createTestDatabase();
    const config = {
      environment: "dev",
      store: db.url,
      serverSecret: { env: SECRET_VAR },
      oauth: { mode: "builtin" },
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
    };
    a = await startGateway({ config, env });
    publicHost = new URL(a.url).host;
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        b = await startGateway({ config: { ...config, publicUrl: a.url, listen: { port } }, env });
        bOrigin = `http://127.0.0.1:${port}`;
        break;
      } catch (err) {
        if (attempt >= 3) throw err; // the port was taken in between: try another
      }
    }
    ({ id: keyId } = await createKey(a, "agent", ["--servers", "demo"]));
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await db?.drop();
  });

  const echoOnA = async (token: string) => {
    const m = modern(id++, "tools/call", { name: "echo", arguments: { text: "a" } }, token);
    return (await rpc(a.endpoint("demo"), m.body, m.headers)).status;
  };
  /** A call sent to replica B's own port with the public Host, as a load balancer forwards it. */
  const echoOnB = async (token: string) => {
    const m = modern(id++, "tools/call", { name: "echo", arguments: { text: "b" } }, token);
    const res = await request(`${bOrigin}/mcp/demo`, {
      method: "POST",
      headers: {
        host: publicHost,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...m.headers,
      },
      body: JSON.stringify(m.body),
    });
    await res.body.text();
    return res.statusCode;
  };

  /** A call to another tool, on replica B: refused as out of the task's scope (a JSON-RPC error). */
  const getTimeOnB = async (token: string) => {
    const m = modern(id++, "tools/call", { name: "get_time", arguments: {} }, token);
    const res = await request(`${bOrigin}/mcp/demo`, {
      method: "POST",
      headers: {
        host: publicHost,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...m.headers,
      },
      body: JSON.stringify(m.body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };

  it("an API key exchanged for a 15-minute one-tool task token: that tool only, refused on B right after `portcullis tasks end`, task and actor on every record", async () => {
    const { key } = await createKey(a, "exchanging agent", ["--servers", "demo"]);
    const clientId = await registerExchangeClient(a, "replica agent");
    const answer = await exchange(a, {
      client_id: clientId,
      subject_token: key,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: a.endpoint("demo"),
      authorization_details: taskDetails({ purpose: "one tool", tools: ["echo"], lifetime_seconds: 900 }),
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const token = answer.body.access_token as string;
    const expiresIn = answer.body.expires_in as number;
    assert.ok(expiresIn > 890 && expiresIn <= 900, `a 15-minute token: expires_in ${expiresIn}`);
    const claims = claimsOf(token);
    const taskId = claims.task_id as string;
    assert.deepEqual(claims.act, { sub: `client:${clientId}` });
    assert.ok((claims.exp as number) - (claims.iat as number) <= 900);

    assert.equal(await echoOnA(token), 200);
    assert.equal(await echoOnB(token), 200, "B verifies a token minted by A");
    const other = await getTimeOnB(token);
    assert.ok(other.body.error !== undefined, `another tool is refused: ${JSON.stringify(other.body)}`);
    assert.equal((other.body.error as { code: number }).code, -32003);

    const ended = await a.cli(["tasks", "end", taskId]);
    assert.equal(ended.status, "ended");
    assert.equal(await echoOnB(token), 401, "B refuses the very next request");

    // The task's whole history, each record naming the task and the actor.
    const history = await waitFor("the task's records", async () => {
      const r = await runCli(["audit", "search", "--task", taskId, "--config", a.configFile, "--json"], env);
      const lines = r.stdout.trim().split("\n").filter(Boolean);
      return lines.length >= 6 && lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    });
    assert.deepEqual(
      history.map((r) => [r.rpcMethod, r.tool, r.decision]),
      [
        ["tasks/mint", null, "allow"],
        ["tools/call", "echo", "allow"],
        ["tools/call", "echo", "allow"],
        ["tools/call", "get_time", "deny"],
        ["tasks/end", null, "allow"],
        [null, null, "deny"],
      ],
    );
    for (const r of history) assert.equal(r.taskId, taskId, JSON.stringify(r));
    for (const r of history.filter((x) => x.rpcMethod !== "tasks/end"))
      assert.deepEqual(r.actor, [`client:${clientId}`], JSON.stringify(r));
  });

  it("a task ended elsewhere is refused by replica B on the next request", async () => {
    const { token, task } = await startTask(a, keyId, { purpose: "replicas", grants: ["demo:echo"] }, env);
    assert.equal(await echoOnA(token), 200);
    assert.equal(await echoOnB(token), 200, "B verified (and cached) the token");
    assert.equal(await endTask(a, task.id, "ended", env), true);
    assert.equal(await echoOnB(token), 401, "B refuses the very next request");
    assert.equal(await echoOnA(token), 401);
  });

  it("a call budget holds across replicas", async () => {
    const { token } = await startTask(a, keyId, { purpose: "budget", grants: ["demo"], budget: 3 }, env);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(i % 2 === 0 ? await echoOnA(token) : await echoOnB(token));
    assert.deepEqual(statuses, [200, 200, 200, 401, 401, 401]);
  });
});
