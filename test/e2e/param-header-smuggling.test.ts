/**
 * Issue 10 item 17: `Mcp-Param-*` headers (MCP 2026-07-28 Streamable HTTP, "Custom Headers
 * from Tool Parameters") were forwarded upstream without being checked against the body, so
 * a client could tell an upstream (or anything between, routing on headers) one value while
 * the gateway authorised another. Now a header that disagrees with the body is refused with
 * HeaderMismatch (-32020), and the upstream only ever gets headers rebuilt from the body.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RawHttpUpstream, startRawHttpUpstream } from "../fixtures/raw-http-upstream.js";
import { modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";

const SQL_TOOL = {
  name: "execute_sql",
  inputSchema: {
    type: "object",
    properties: {
      region: { type: "string", "x-mcp-header": "Region" },
      query: { type: "string" },
      options: { type: "object", properties: { priority: { type: "integer", "x-mcp-header": "Priority" } } },
    },
  },
  annotations: { readOnlyHint: true },
};

describe("Mcp-Param header smuggling", () => {
  let upstream: RawHttpUpstream;
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    upstream = await startRawHttpUpstream([SQL_TOOL]);
    gw = await startGateway({
      config: { environment: "test", servers: { db: { transport: "http", url: upstream.url } } },
    });
    key = (await gw.cli(["keys", "create", "--name", "smuggler"])).key as string;
    const list = modern(1, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("db"), list.body, list.headers)).status, 200);
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  const call = (id: number, args: Record<string, unknown>, headers: Record<string, string>) => {
    const m = modern(id, "tools/call", { name: "execute_sql", arguments: args }, key);
    return rpc(gw.endpoint("db"), m.body, { ...m.headers, ...headers });
  };
  const lastCallHeaders = () => {
    const calls = upstream.requests.filter((r) => (r.body as { method?: string })?.method === "tools/call");
    return calls.at(-1)?.headers ?? {};
  };

  it("an Mcp-Param header that disagrees with the body is refused with -32020 and never reaches the upstream", async () => {
    // Positive control: a matching header passes, and the upstream sees the body's value.
    const ok = await call(2, { region: "us-west1", query: "select 1" }, { "mcp-param-region": "us-west1" });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(lastCallHeaders()["mcp-param-region"], "us-west1");
    const before = upstream.calls().length;

    const lying = await call(
      3,
      { region: "us-west1", query: "drop table users" },
      { "mcp-param-region": "eu-west1" },
    );
    assert.equal(lying.status, 400, lying.text);
    assert.equal(lying.json.id, 3);
    assert.equal((lying.json.error as { code: number }).code, -32020);
    const nested = await call(
      4,
      { region: "us-west1", options: { priority: 1 } },
      { "mcp-param-priority": "9" },
    );
    assert.equal(nested.status, 400, nested.text);
    assert.equal((nested.json.error as { code: number }).code, -32020);
    const absent = await call(5, { query: "no region" }, { "mcp-param-region": "us-west1" });
    assert.equal(absent.status, 400, absent.text);
    assert.equal(upstream.calls().length, before, "refused calls never reached the upstream");
  });

  it("matching headers are accepted however they are encoded; the upstream gets headers rebuilt from the body", async () => {
    const b64 = `=?base64?${Buffer.from("us-west1").toString("base64")}?=`;
    let res = await call(
      10,
      { region: "us-west1", options: { priority: 42 } },
      {
        "mcp-param-region": b64,
        "mcp-param-priority": "42.0",
      },
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(lastCallHeaders()["mcp-param-region"], "us-west1");
    assert.equal(lastCallHeaders()["mcp-param-priority"], "42");
    // A header the gateway cannot check (no such annotated parameter) is not forwarded.
    res = await call(11, { region: "日本" }, { "mcp-param-tenant": "someone-else" });
    assert.equal(res.status, 200, res.text);
    assert.equal(lastCallHeaders()["mcp-param-tenant"], undefined);
    // A value the client did not mirror is still given to the upstream, encoded per the spec.
    assert.equal(
      lastCallHeaders()["mcp-param-region"],
      `=?base64?${Buffer.from("日本").toString("base64")}?=`,
    );
  });
});
