/**
 * OAuth scopes (RFC 6750 §3.1 insufficient_scope, MCP authorization "Scope Challenge"): an
 * access token must carry the route's scopes, and a tools/call the tool's additions too;
 * the 403 names every scope the operation needs, so the client can step up.
 */
import { missingScopes } from "../../authz/oauthScopes.js";
import { insufficientScope } from "../../core/errors.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function oauthScope(deps: StageDeps): Step {
  return (call) => {
    const { msg, principal, route } = call;
    if (principal === null || principal.oauthScopes === null || msg?.kind !== "request" || !route)
      return undefined;
    // Own keys only: a tool named `valueOf` or `constructor` must not find Object.prototype's.
    const name = msg.method === "tools/call" ? (msg.name ?? "") : null;
    const extra = name !== null && Object.hasOwn(route.toolScopes, name) ? route.toolScopes[name] : undefined;
    const required = extra === undefined ? route.scopes : [...route.scopes, ...extra];
    const missing = missingScopes(principal.oauthScopes, required);
    if (missing.length === 0) return undefined;
    const metadata = `${deps.baseUrl()}/.well-known/oauth-protected-resource/mcp/${call.server}`;
    return deny(
      insufficientScope(required, `token lacks ${missing.join(" ")}`, metadata),
      `token lacks scope(s) ${missing.join(" ")}`,
      { required },
    );
  };
}
