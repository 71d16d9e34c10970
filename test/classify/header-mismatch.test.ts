import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkMirroredHeaders, decodeHeaderValue } from "../../src/classify/headers.js";
import { classifyMessage } from "../../src/classify/message.js";
import { GatewayError } from "../../src/core/errors.js";

const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28" };
const call = (name: string) =>
  classifyMessage(
    JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name, arguments: {}, _meta: META },
    }),
  );

function code(fn: () => void): number | null {
  try {
    fn();
    return null;
  } catch (err) {
    assert.ok(err instanceof GatewayError);
    return err.code;
  }
}

describe("Mcp-Method / Mcp-Name header checks (HeaderMismatch -32020)", () => {
  const ok = { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo" };

  it("accepts headers that mirror the body", () => {
    assert.equal(
      code(() => checkMirroredHeaders(ok, call("echo"))),
      null,
    );
  });

  it("refuses an Mcp-Method header that names another method than the body", () => {
    assert.equal(
      code(() => checkMirroredHeaders({ ...ok, "mcp-method": "tools/list" }, call("echo"))),
      -32020,
    );
  });

  it("refuses an Mcp-Name header naming a harmless tool while the body calls another", () => {
    assert.equal(
      code(() => checkMirroredHeaders({ ...ok, "mcp-name": "get_time" }, call("delete_note"))),
      -32020,
    );
  });

  it("refuses a 2026-07-28 request that omits the required headers", () => {
    assert.equal(
      code(() => checkMirroredHeaders({ "mcp-protocol-version": "2026-07-28" }, call("echo"))),
      -32020,
    );
    assert.equal(
      code(() =>
        checkMirroredHeaders(
          { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call" },
          call("echo"),
        ),
      ),
      -32020,
    );
  });

  it("checks a mirrored header even on legacy revisions", () => {
    const legacy = classifyMessage(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo" } }),
    );
    assert.equal(
      code(() => checkMirroredHeaders({ "mcp-method": "tools/list" }, legacy)),
      -32020,
    );
    assert.equal(
      code(() => checkMirroredHeaders({}, legacy)),
      null,
    );
  });

  it("decodes base64-sentinel names before comparing", () => {
    const name = "naïve tool";
    const encoded = `=?base64?${Buffer.from(name).toString("base64")}?=`;
    assert.equal(decodeHeaderValue(encoded), name);
    assert.equal(
      code(() => checkMirroredHeaders({ ...ok, "mcp-name": encoded }, call(name))),
      null,
    );
  });

  it("refuses a protocol-version header that disagrees with _meta", () => {
    assert.equal(
      code(() => checkMirroredHeaders({ ...ok, "mcp-protocol-version": "2025-11-25" }, call("echo"))),
      -32020,
    );
  });
});

describe("JSON-RPC classification", () => {
  it("answers -32700 for malformed JSON and -32600 for invalid requests and batches", () => {
    assert.equal(
      code(() => classifyMessage("{")),
      -32700,
    );
    assert.equal(
      code(() => classifyMessage("[]")),
      -32600,
    );
    assert.equal(
      code(() => classifyMessage('{"jsonrpc":"1.0","id":1,"method":"x"}')),
      -32600,
    );
    assert.equal(
      code(() => classifyMessage('{"jsonrpc":"2.0","id":{},"method":"x"}')),
      -32600,
    );
    assert.equal(
      code(() => classifyMessage('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}')),
      -32602,
    );
  });
});
