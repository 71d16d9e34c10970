/**
 * Regression: a refused call reached the official SDK clients as HTTP 403, which they surface
 * as a transport error (`StreamableHTTPError` / `SdkHttpError`) without the JSON-RPC error:
 * the caller could read neither the code nor the decision id. Now an authorization refusal
 * of a request is its JSON-RPC error (HTTP 200), and the v1 (`@modelcontextprotocol/sdk`) and
 * v2 (`@modelcontextprotocol/client`) clients reject with McpError / ProtocolError carrying
 * the code, the message and `data.decisionId`, the id the audit record holds.
 *
 * (A v2 client pinned to 2026-07-28 whose key cannot reach the server at all sees its
 * server/discover probe refused, which that SDK reports as failed version negotiation whatever
 * the error: that case is asserted for v1, whose initialize rejects with the refusal itself.)
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  Client as ClientV2,
  ProtocolError,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { auditRecords } from "../helpers/audit.js";
import { createKey, DEMO_SERVER, type RunningGateway, startGateway, tempDir } from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";
import { waitFor } from "../helpers/wait.js";

const MODERN = "2026-07-28";

const POLICY = `
rules:
  - id: allow-all-but-reset
    effect: allow
  - id: never-reset
    effect: deny
    match: { methods: [tools/call], tools: [reset_notebook] }
`;

interface ReadableRefusal {
  code: number;
  message: string;
  data?: { decisionId?: string };
}

describe("SDK clients read a refusal as the request's JSON-RPC error, with its decision id", () => {
  let gw: RunningGateway;
  let key: string;
  let echoOnly: string;
  let elsewhere: string;

  before(async () => {
    const dir = tempDir();
    const policy = join(dir, "policy.yaml");
    writeFileSync(policy, POLICY);
    gw = await startGateway({
      dir,
      config: {
        environment: "test",
        policy: { paths: [policy] },
        servers: {
          demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
          other: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
        },
      },
    });
    ({ key } = await createKey(gw, "sdk"));
    ({ key: echoOnly } = await createKey(gw, "echo-only", ["--servers", "demo:echo"]));
    ({ key: elsewhere } = await createKey(gw, "elsewhere", ["--servers", "other"]));
  });
  after(async () => {
    await gw.stop();
  });

  const headers = (k: string) => ({ authorization: `Bearer ${k}` });

  async function v1(k: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: headers(k) },
    });
    const client = new Client({ name: "v1-refusals", version: "1.0.0" });
    await client.connect(transport);
    return { client, transport };
  }

  async function v2(k: string): Promise<ClientV2> {
    const client = new ClientV2(
      { name: "v2-refusals", version: "2.0.0" },
      { versionNegotiation: { mode: { pin: MODERN } } },
    );
    await client.connect(
      new TransportV2(new URL(gw.endpoint("demo")), { requestInit: { headers: headers(k) } }),
    );
    return client;
  }

  /** The refusal's decision id names exactly one deny record of the audit trail, with this reason. */
  async function assertAudited(refusal: ReadableRefusal, reason: RegExp): Promise<void> {
    const id = refusal.data?.decisionId;
    assert.ok(id, `the error carries a decision id: ${JSON.stringify(refusal)}`);
    assert.ok(refusal.message.includes(id), `the message names the decision: ${refusal.message}`);
    // The audit writer commits in groups: wait for the record to be written.
    const records = await waitFor(`the record of decision ${id}`, async () => {
      const found = (await auditRecords(gw)).filter((r) => r.decisionId === id);
      return found.length > 0 && found;
    });
    assert.equal(records.length, 1, `one record holds decision ${id}`);
    assert.equal(records[0]?.decision, "deny");
    assert.match(records[0]?.reason ?? "", reason);
  }

  /** What `call` rejected with: an McpError (v1) or a ProtocolError (v2), never a transport error. */
  async function refusalOf(call: Promise<unknown>, kind: "v1" | "v2"): Promise<ReadableRefusal> {
    try {
      await call;
    } catch (err) {
      if (kind === "v1") assert.ok(err instanceof McpError, `an McpError, not ${String(err)}`);
      else assert.ok(err instanceof ProtocolError, `a ProtocolError, not ${String(err)}`);
      return err as ReadableRefusal;
    }
    assert.fail("the call was not refused");
  }

  it("v1 client: a tools/call denied by policy rejects with McpError -32040 carrying the decision id", async () => {
    const { client, transport } = await v1(key);
    try {
      assert.match(textOf(await client.callTool({ name: "echo", arguments: { text: "ok" } })), /ok/);
      const refusal = await refusalOf(client.callTool({ name: "reset_notebook", arguments: {} }), "v1");
      assert.equal(refusal.code, -32040);
      await assertAudited(refusal, /.+/);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("v2 client: a tools/call denied by policy rejects with ProtocolError -32040 carrying the decision id", async () => {
    const client = await v2(key);
    try {
      const refusal = await refusalOf(client.callTool({ name: "reset_notebook", arguments: {} }), "v2");
      assert.equal(refusal.code, -32040);
      await assertAudited(refusal, /.+/);
    } finally {
      await client.close();
    }
  });

  it("v1 and v2 clients: a tool outside a tool-scoped key rejects with -32003 and its decision id", async () => {
    const { client, transport } = await v1(echoOnly);
    try {
      const refusal = await refusalOf(client.callTool({ name: "add_note", arguments: {} }), "v1");
      assert.equal(refusal.code, -32003);
      await assertAudited(refusal, /^tool add_note is outside the credential's scope$/);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
    const modern = await v2(echoOnly);
    try {
      const refusal = await refusalOf(modern.callTool({ name: "add_note", arguments: {} }), "v2");
      assert.equal(refusal.code, -32003);
      await assertAudited(refusal, /^tool add_note is outside the credential's scope$/);
    } finally {
      await modern.close();
    }
  });

  it("v1 client with a key for another server: connecting rejects with McpError -32003 naming the decision", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: headers(elsewhere) },
    });
    const client = new Client({ name: "v1-refusals", version: "1.0.0" });
    try {
      const refusal = await refusalOf(client.connect(transport), "v1");
      assert.equal(refusal.code, -32003);
      await assertAudited(refusal, /^server demo is outside the credential's scope$/);
    } finally {
      await client.close();
    }
  });
});
