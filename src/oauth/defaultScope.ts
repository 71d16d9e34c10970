/**
 * RFC 6749 §3.3 — the scope of an authorization request that names none: "the authorization
 * server MUST either process the request using a pre-defined default value or fail the
 * request indicating an invalid scope". oidc-provider does neither: it signs the user in and
 * then answers `access_denied` because nothing was granted.
 *
 * The default is the scopes the requested MCP endpoint supports, which its protected resource
 * metadata publishes as `scopes_supported` (RFC 9728 §2): exactly what a client following the
 * MCP scope selection strategy requests when the server names no scope in its challenge
 * (MCP authorization 2025-11-25, "Scope Selection Strategy"). So a client that omits the
 * parameter gets no more than a compliant client gets by default; the user still sees the
 * scopes on the consent page, and per-request policy still applies. A client registered with
 * a `scope` allow-list (RFC 7591 §2) is defaulted only to the scopes on that list.
 */

/** Where oidc-provider asks for a resource server while a user authorization is being requested. */
const AUTHORIZATION_ROUTES = new Set(["authorization", "pushed_authorization_request"]);

/** The parts of oidc-provider's context this default reads and sets. */
export interface ScopeRequestContext {
  oidc: {
    route?: string;
    params?: Record<string, unknown>;
    client?: { scope?: string };
  };
}

/**
 * Sets `scope` on an authorization request that has none to `resourceScopes` (limited to the
 * client's registered allow-list, if any). Called with the one requested resource's scopes.
 */
export function applyDefaultScope(ctx: ScopeRequestContext, resourceScopes: readonly string[]): void {
  const { route, params, client } = ctx.oidc;
  if (route === undefined || !AUTHORIZATION_ROUTES.has(route) || params === undefined) return;
  if (typeof params.scope === "string" && params.scope.trim() !== "") return;
  const allowed = typeof client?.scope === "string" ? new Set(client.scope.split(" ")) : null;
  const scopes = resourceScopes.filter((s) => allowed === null || allowed.has(s));
  if (scopes.length > 0) params.scope = scopes.join(" ");
}
