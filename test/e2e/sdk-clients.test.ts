/**
 * The official TypeScript SDK clients call tools through the gateway, on 2025-11-25 (v1)
 * and 2026-07-28 (v2), against a real stdio server (server-everything), the bundled demo
 * server and a real Streamable HTTP upstream.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import {
  DEMO_SERVER,
  EVERYTHING_SERVER,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
} from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";

const MODERN = "2026-07-28";

describe("official SDK clients through the gateway", () => {
  let gw: RunningGateway;
  let upstream: HttpUpstream;
  let key: string;
  let otherKey: string;

  before(async () => {
    upstream = await startHttpUpstream();
    gw = await startGateway({
      config: {
        environment: "test",
        servers: {
          everything: { transport: "stdio", command: process.execPath, args: [EVERYTHING_SERVER, "stdio"] },
          demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
          remote: {
            transport: "http",
            url: upstream.url,
            headers: { "x-upstream-token": { env: "PORTCULLIS_TEST_UPSTREAM_TOKEN" } },
          },
        },
      },
      env: { PORTCULLIS_TEST_UPSTREAM_TOKEN: "upstream-secret-chosen-by-the-operator" },
    });
    key = (await gw.cli(["keys", "create", "--name", "sdk"])).key as string;
    otherKey = (await gw.cli(["keys", "create", "--name", "sdk-other"])).key as string;
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
  });

  const headers = (k: string) => ({ authorization: `Bearer ${k}` });

  async function v1(
    server: string,
    k = key,
  ): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint(server)), {
      requestInit: { headers: headers(k) },
    });
    const client = new Client({ name: "v1-e2e", version: "1.0.0" });
    await client.connect(transport);
    return { client, transport };
  }

  async function v2(server: string, k = key): Promise<ClientV2> {
    const client = new ClientV2(
      { name: "v2-e2e", version: "2.0.0" },
      { versionNegotiation: { mode: { pin: MODERN } } },
    );
    await client.connect(
      new TransportV2(new URL(gw.endpoint(server)), { requestInit: { headers: headers(k) } }),
    );
    return client;
  }

  for (const server of ["everything", "demo", "remote"]) {
    it(`v1 client (2025-11-25, session) calls a tool on ${server}`, async () => {
      const { client, transport } = await v1(server);
      try {
        assert.equal(transport.protocolVersion, "2025-11-25");
        assert.ok(transport.sessionId);
        const { tools } = await client.listTools();
        assert.ok(
          tools.some((t) => t.name === "echo"),
          tools.map((t) => t.name).join(","),
        );
        assert.equal(
          textOf(
            await client.callTool({ name: "echo", arguments: { message: "hi v1", text: "hi v1" } }),
          ).includes("hi v1"),
          true,
        );
      } finally {
        await transport.terminateSession().catch(() => {});
        await client.close();
      }
    });

    it(`v2 client (2026-07-28, stateless) calls a tool on ${server}`, async () => {
      const client = await v2(server);
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
        const { tools } = await client.listTools();
        assert.ok(tools.some((t) => t.name === "echo"));
        assert.equal(
          textOf(
            await client.callTool({ name: "echo", arguments: { message: "hi v2", text: "hi v2" } }),
          ).includes("hi v2"),
          true,
        );
      } finally {
        await client.close();
      }
    });
  }

  it("streams progress notifications through (SSE passthrough) on both revisions", async () => {
    const { client, transport } = await v1("remote");
    try {
      const seen: number[] = [];
      const r = await client.callTool({ name: "echo", arguments: { text: "p" } }, undefined, {
        onprogress: (p) => seen.push(p.progress),
      });
      assert.equal(textOf(r), "p");
      assert.deepEqual(seen, [1, 2]);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
    const c2 = await v2("remote");
    try {
      const seen: number[] = [];
      const r = await c2.callTool(
        { name: "echo", arguments: { text: "p2" } },
        { onprogress: (p) => seen.push(p.progress) },
      );
      assert.equal(textOf(r), "p2");
      assert.deepEqual(seen, [1, 2]);
    } finally {
      await c2.close();
    }
  });

  it("never forwards the client's credential upstream, only the operator's configured secret (no token passthrough)", async () => {
    const client = await v2("remote");
    try {
      const r = await client.callTool({ name: "whoami", arguments: {} });
      const seenHeaders = JSON.parse(textOf(r)) as Record<string, string>;
      assert.equal(seenHeaders.authorization, undefined);
      assert.equal(seenHeaders["x-upstream-token"], "upstream-secret-chosen-by-the-operator");
      assert.ok(!JSON.stringify(seenHeaders).includes(key));
    } finally {
      await client.close();
    }
    assert.ok(upstream.requests.length > 0);
    assert.ok(upstream.requests.every((r) => r.headers.authorization === undefined));
  });

  it("keeps one caller's stdio server state away from another caller (per-caller isolation)", async () => {
    const a = await v2("demo", key);
    const b = await v2("demo", otherKey);
    try {
      await a.callTool({ name: "add_note", arguments: { title: "secret plan", body: "only for caller A" } });
      const seenByA = textOf(await a.callTool({ name: "search_notes", arguments: { query: "secret plan" } }));
      const seenByB = textOf(await b.callTool({ name: "search_notes", arguments: { query: "secret plan" } }));
      assert.match(seenByA, /secret plan/);
      assert.doesNotMatch(seenByB, /secret plan/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses another caller's session id (session hijacking) with 404", async () => {
    const { client, transport } = await v1("demo", key);
    try {
      const stolen = transport.sessionId as string;
      const res = await rpc(
        gw.endpoint("demo"),
        { jsonrpc: "2.0", id: 1, method: "tools/list" },
        {
          ...headers(otherKey),
          "mcp-session-id": stolen,
          "mcp-protocol-version": "2025-11-25",
        },
      );
      assert.equal(res.status, 404);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("serves the 2025-x GET stream and ends a session on DELETE (stdio bridge)", async () => {
    const init = await rpc(
      gw.endpoint("demo"),
      {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      },
      headers(key),
    );
    assert.equal(init.status, 200);
    assert.equal((init.json.result as { protocolVersion: string }).protocolVersion, "2025-06-18");
    const session = init.headers.get("mcp-session-id") as string;
    assert.ok(session);
    const common = { ...headers(key), "mcp-session-id": session, "mcp-protocol-version": "2025-06-18" };
    const controller = new AbortController();
    const stream = await fetch(gw.endpoint("demo"), {
      headers: { ...common, accept: "text/event-stream" },
      signal: controller.signal,
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    controller.abort();
    const ended = await fetch(gw.endpoint("demo"), { method: "DELETE", headers: common });
    assert.equal(ended.status, 204);
    const after = await rpc(gw.endpoint("demo"), { jsonrpc: "2.0", id: 2, method: "tools/list" }, common);
    assert.equal(after.status, 404, "the ended session is gone");
  });

  it("answers server/discover for a stdio server that only speaks 2025-11-25 (bridging)", async () => {
    const call = modern(1, "server/discover", {}, key);
    const res = await rpc(gw.endpoint("demo"), call.body, call.headers);
    assert.equal(res.status, 200, res.text);
    const result = res.json.result as Record<string, unknown>;
    assert.equal(result.resultType, "complete");
    assert.ok((result.supportedVersions as string[]).includes(MODERN));
    assert.ok((result.capabilities as Record<string, unknown>).tools);
  });

  it("answers a Mcp-Method header that disagrees with the body with -32020, on stdio and HTTP upstreams", async () => {
    for (const server of ["demo", "remote"]) {
      const call = modern(2, "tools/call", { name: "echo", arguments: { text: "x" } }, key);
      const res = await rpc(gw.endpoint(server), call.body, { ...call.headers, "mcp-method": "tools/list" });
      assert.equal(res.status, 400, server);
      assert.equal((res.json.error as { code: number }).code, -32020);
    }
  });
});
