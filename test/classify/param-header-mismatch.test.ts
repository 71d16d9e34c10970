/**
 * MCP 2026-07-28 `Mcp-Param-*` checks (src/classify/paramHeaders.ts), as pure functions:
 * which `x-mcp-header` annotations are trusted, how header values compare with the body,
 * and what the upstream is sent. The end-to-end attack is in e2e/param-header-smuggling.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyMessage } from "../../src/classify/message.js";
import { checkParamHeaders, encodeHeaderValue, paramBindings } from "../../src/classify/paramHeaders.js";

const call = (args: Record<string, unknown>) =>
  classifyMessage(
    JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "t", arguments: args } }),
  );

const schema = {
  type: "object",
  properties: {
    region: { type: "string", "x-mcp-header": "Region" },
    flag: { type: "boolean", "x-mcp-header": "Flag" },
    nested: { type: "object", properties: { n: { type: "integer", "x-mcp-header": "N" } } },
  },
};

describe("Mcp-Param header checks", () => {
  it("trusts only annotations reachable through properties, on primitive types, unique ignoring case", () => {
    assert.deepEqual([...(paramBindings(schema)?.keys() ?? [])], ["region", "flag", "n"]);
    for (const bad of [
      { properties: { a: { type: "number", "x-mcp-header": "A" } } },
      {
        properties: {
          a: { type: "string", "x-mcp-header": "A" },
          b: { type: "string", "x-mcp-header": "a" },
        },
      },
      { properties: { a: { type: "string", "x-mcp-header": "bad name" } } },
    ]) {
      assert.equal(paramBindings(bad), null, JSON.stringify(bad));
    }
    // Behind items/oneOf an annotation is not reachable: never bound, so never trusted.
    const hidden = {
      properties: { list: { type: "array", items: { type: "string", "x-mcp-header": "X" } } },
    };
    assert.deepEqual([...(paramBindings(hidden)?.keys() ?? [])], []);
  });

  it("refuses a header that disagrees with the body, or names a value the body does not have, with -32020", () => {
    const b = paramBindings(schema);
    for (const [headers, args] of [
      [{ "mcp-param-region": "eu" }, { region: "us" }],
      [{ "mcp-param-region": "us" }, {}],
      [{ "mcp-param-flag": "True" }, { flag: true }],
      [{ "mcp-param-n": "4" }, { nested: { n: 5 } }],
      [{ "mcp-param-n": "" }, { nested: { n: 0 } }],
      [{ "mcp-param-region": "=?base64?ZXU=?=" }, { region: "us" }],
    ] as const) {
      assert.throws(
        () => checkParamHeaders(headers, call(args), b),
        (e: { code?: number; status?: number }) => e.code === -32020 && e.status === 400,
        JSON.stringify(headers),
      );
    }
  });

  it("accepts matching headers (decoded, integers compared numerically) and rebuilds what goes upstream from the body", () => {
    const b = paramBindings(schema);
    const out = checkParamHeaders(
      { "mcp-param-region": "=?base64?dXM=?=", "mcp-param-n": "5.0", "mcp-param-other": "dropped" },
      call({ region: "us", flag: false, nested: { n: 5 } }),
      b,
    );
    assert.deepEqual(out, { "mcp-param-region": "us", "mcp-param-flag": "false", "mcp-param-n": "5" });
    // Unknown schema: nothing is checked or forwarded.
    assert.deepEqual(checkParamHeaders({ "mcp-param-region": "x" }, call({ region: "y" }), undefined), {});
  });

  it("encodes values that are not plain header text with the base64 sentinel", () => {
    assert.equal(encodeHeaderValue("us-west1"), "us-west1");
    assert.equal(encodeHeaderValue(" padded "), "=?base64?IHBhZGRlZCA=?=");
    assert.equal(encodeHeaderValue("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
    assert.equal(encodeHeaderValue("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
  });
});
