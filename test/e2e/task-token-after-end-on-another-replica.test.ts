/**
 * A task token after `tasks end` on another replica (issue 13, "Bad input and attacks"): two
 * real gateway processes share one PostgreSQL store and server secret (B's publicUrl is A's
 * URL, as behind one load balancer). A task token used on both is ended by a third process
 * (as `portcullis tasks end` does) and refused by replica B on the very next request; a call
 * budget holds across the replicas: calls alternating between them pass exactly `budget`
 * times.
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
  startGateway,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { endTask, startTask } from "../helpers/tasks.js";

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
