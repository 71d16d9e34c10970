/**
 * A tools/call whose arguments nested 100,000 arrays deep (~200 KB, under the body limit)
 * reached the audit writer and stopped it. Classification now refuses any message nested
 * deeper than the limit with 400 and JSON-RPC -32600, echoing the id, before anything else
 * reads it; brackets inside strings do not count.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyMessage } from "../../src/classify/message.js";
import { MAX_MESSAGE_NESTING, nestsDeeperThan } from "../../src/classify/nesting.js";
import { GatewayError } from "../../src/core/errors.js";

function call(argumentsJson: string): string {
  return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":${argumentsJson}}}`;
}

describe("message nesting limit", () => {
  it("refuses arguments nested 100,000 arrays deep with 400 and -32600, echoing the id", () => {
    const deep = `${"[".repeat(100_000)}1${"]".repeat(100_000)}`;
    assert.throws(
      () => classifyMessage(call(`{"deep":${deep}}`)),
      (err: unknown) =>
        err instanceof GatewayError && err.status === 400 && err.code === -32600 && err.rpcId === 7,
    );
  });

  it("accepts a message at the limit, and brackets inside strings do not count", () => {
    // The message, params and arguments object are three levels; one argument fills the rest.
    const inner = MAX_MESSAGE_NESTING - 3;
    const atLimit = `${"[".repeat(inner)}"[[[{{{\\"]]"${"]".repeat(inner)}`;
    assert.equal(classifyMessage(call(`{"a":${atLimit}}`)).name, "echo");
    assert.throws(() => classifyMessage(call(`{"a":[${atLimit}]}`)), GatewayError);
    assert.equal(nestsDeeperThan(`["${"[".repeat(1000)}"]`, 1), false);
  });
});
