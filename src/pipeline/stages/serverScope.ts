/**
 * The server named in the URL: it must be configured (404 only after authentication, so an
 * unauthenticated caller cannot list servers), and within the credential's scope.
 */
import { forbidden, GatewayError, RpcCode } from "../../core/errors.js";
import { allowsServer } from "../../core/scope.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function serverScope(_deps: StageDeps): Step {
  return (call) => {
    if (call.route === undefined) {
      const error = new GatewayError(
        404,
        RpcCode.MethodNotFound,
        "Unknown MCP server",
        `no server named ${call.server}`,
      );
      return deny(error, "unknown server");
    }
    if (!allowsServer(call.principal?.scopes ?? null, call.server))
      return deny(
        forbidden(`server ${call.server} outside scope`),
        `server ${call.server} is outside the credential's scope`,
      );
    return undefined;
  };
}
