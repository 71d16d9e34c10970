/**
 * A tools/call or prompts/get whose `arguments` is not an object (MCP schema: an object when
 * present) is the client's error: refused at classification with 400 and -32602, never
 * forwarded to come back as the upstream's -32603 "Internal error". Found by the request-path fuzz.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { classifyMessage } from "../../src/classify/message.js";
import { errorReply, RpcCode } from "../../src/core/errors.js";

const call = (method: string, args: unknown) =>
  JSON.stringify({ jsonrpc: "2.0", id: 7, method, params: { name: "read_note", arguments: args } });

it("refuses a tool call whose arguments are a number, string, array, boolean or null with -32602", () => {
  for (const method of ["tools/call", "prompts/get"]) {
    for (const args of [42, "x", [1, 2], true, null]) {
      let caught: unknown;
      try {
        classifyMessage(call(method, args));
      } catch (err) {
        caught = err;
      }
      const reply = errorReply(caught, 7);
      assert.equal(reply.status, 400, `${method} with ${JSON.stringify(args)}`);
      assert.equal((reply.body as { error: { code: number } }).error.code, RpcCode.InvalidParams);
      assert.equal((reply.body as { id: unknown }).id, 7);
    }
  }
});

it("accepts object arguments and absent arguments (control)", () => {
  assert.equal(classifyMessage(call("tools/call", { id: "n1" })).name, "read_note");
  assert.equal(
    classifyMessage(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "list" } }))
      .name,
    "list",
  );
});
