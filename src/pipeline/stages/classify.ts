/**
 * Classification of the POST body (MCP Streamable HTTP: one JSON-RPC message, as
 * application/json), then the headers that mirror it: Mcp-Method / Mcp-Name must agree with
 * the body (-32020), and Mcp-Param-* are checked and rebuilt from it for the upstream.
 * JSON-RPC 2.0 §4.1: a request without an id is a notification the server runs without
 * replying; only notifications/* may go without one, anything else would skip policy.
 */
import { checkMirroredHeaders } from "../../classify/headers.js";
import { classifyMessage } from "../../classify/message.js";
import { checkParamHeaders } from "../../classify/paramHeaders.js";
import { GatewayError, RpcCode } from "../../core/errors.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

const JSON_TYPE = /^application\/json\b/i;

export function classify({ listedTools }: StageDeps): Step {
  return (call) => {
    try {
      const type = call.headers["content-type"] ?? "";
      if (!JSON_TYPE.test(type)) {
        throw new GatewayError(
          415,
          RpcCode.InvalidRequest,
          "Unsupported Media Type: use application/json",
          `content-type ${type}`,
        );
      }
      call.bodyRead = true;
      const msg = classifyMessage(call.body ?? "");
      call.msg = msg;
      checkMirroredHeaders(call.headers, msg);
      call.paramHeaders = checkParamHeaders(
        call.headers,
        msg,
        listedTools.bindings(call.server, msg.name ?? ""),
      );
      if (msg.kind === "notification" && !msg.method?.startsWith("notifications/")) {
        throw new GatewayError(
          400,
          RpcCode.InvalidRequest,
          "Invalid Request",
          `${msg.method} sent without an id: only notifications/* may be sent as notifications`,
        );
      }
      return undefined;
    } catch (err) {
      return deny(err, err instanceof GatewayError ? err.reason : "classification failed");
    }
  };
}
