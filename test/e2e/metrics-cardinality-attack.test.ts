/**
 * Issue 10 item 5: requests to `/mcp/<anything>` (no credential needed) made Prometheus
 * series labelled with the name from the URL, and every method or status a client or
 * upstream chose became a label value too. Now every label comes from a set fixed at start:
 * configured servers or `unknown`, known methods or a class, known outcomes or a status class.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { scrape, seriesOf } from "../helpers/metrics.js";

const token = () => `z${randomBytes(5).toString("hex")}`;

describe("metrics cardinality attack", () => {
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "test",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    key = (await gw.cli(["keys", "create", "--name", "metrics-attacker"])).key as string;
  });
  after(() => gw.stop());

  /** One round of the attack: every kind of request, each with fresh random names. */
  async function attack(rounds: number, seen: string[]): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      const server = token();
      const method = `${token()}/${token()}`;
      const tool = token();
      seen.push(server, method, tool);
      const auth = { authorization: `Bearer ${key}` };
      const noCall = modern(i, "tools/list");
      const randomMethod = modern(i, method, {}, key);
      const randomTool = modern(i, "tools/call", { name: tool, arguments: {} }, key);
      await Promise.all([
        // No credential, a server that does not exist.
        rpc(`${gw.url}/mcp/${server}`, noCall.body, noCall.headers),
        // A valid key, a server that does not exist, GET and DELETE too.
        rpc(`${gw.url}/mcp/${server}`, noCall.body, { ...noCall.headers, ...auth }),
        fetch(`${gw.url}/mcp/${server}`, { headers: auth }).then((r) => r.text()),
        fetch(`${gw.url}/mcp/${server}`, { method: "DELETE" }).then((r) => r.text()),
        // A configured server: random methods and tools, and garbage bodies.
        rpc(gw.endpoint("demo"), randomMethod.body, randomMethod.headers),
        rpc(gw.endpoint("demo"), randomTool.body, randomTool.headers),
        rpc(gw.endpoint("demo"), `{"jsonrpc":"2.0","id":1,"method":"${method}"`, auth),
      ]);
    }
  }

  it("random servers, methods and tools from any caller add no Prometheus series", async (t) => {
    // Positive control: a configured server's requests are labelled with its name.
    const list = modern(1, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("demo"), list.body, list.headers)).status, 200);
    const seen: string[] = [];
    await attack(25, seen);
    const first = seriesOf(await scrape(gw));
    await attack(25, seen);
    const text = await scrape(gw);
    const second = seriesOf(text);
    t.diagnostic(
      `${seen.length} random names sent in 350 requests; portcullis series: ${first.size} then ${second.size}`,
    );
    assert.ok(
      [...second].some((s) => s.includes('server="demo"')),
      "configured servers keep their label",
    );
    assert.deepEqual(
      [...second].filter((s) => !first.has(s)),
      [],
      "the second round added no series",
    );
    for (const s of second) {
      const server = /server="([^"]*)"/.exec(s)?.[1];
      if (server !== undefined) assert.ok(server === "demo" || server === "unknown", s);
    }
    const leaked = seen.filter((name) => text.includes(name.split("/")[0] as string));
    assert.deepEqual(leaked, [], "no client-chosen name appears in /metrics");
  });
});
