/**
 * The credential's reach below server level: a key scoped to some tools may call only those
 * (clause 1 of src/authz/mayCall.ts), and only the methods that stay within a tool-scoped
 * reach (lists are filtered for it); the rest needs a server-wide scope.
 */
import { forbidden } from "../../core/errors.js";
import { restrictsTools } from "../../core/scope.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

/** Methods that stay within a tool-scoped key's reach (lists are filtered for it). */
const TOOL_SCOPED_METHODS = new Set([
  "initialize",
  "ping",
  "server/discover",
  "tools/list",
  "tools/call",
  "completion/complete",
  "logging/setLevel",
]);

export function credentialScope({ callRule }: StageDeps): Step {
  return (call) => {
    const { msg, principal } = call;
    if (msg === null || principal === null || msg.kind !== "request" || msg.method === null) return undefined;
    if (msg.method === "tools/call") {
      const tool = msg.name ?? "";
      if (!callRule.inScope(principal, call.server, tool))
        return deny(forbidden("tool outside scope"), `tool ${tool} is outside the credential's scope`);
      return undefined;
    }
    if (!TOOL_SCOPED_METHODS.has(msg.method) && restrictsTools(principal.scopes, call.server))
      return deny(
        forbidden("method outside scope"),
        `${msg.method} needs a server-wide scope; the credential is scoped to tools`,
      );
    return undefined;
  };
}
