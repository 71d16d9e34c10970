/**
 * OAuth scope checks (MCP authorization, "Scope Challenge Handling"; RFC 6750 §3.1
 * insufficient_scope). Scopes are ':'-separated paths and a broader scope implies every
 * narrower one: `mcp` grants `mcp:tools` and `mcp:tools:write`.
 */

export function grants(granted: ReadonlySet<string>, required: string): boolean {
  if (granted.has(required)) return true;
  for (let i = required.lastIndexOf(":"); i > 0; i = required.lastIndexOf(":", i - 1)) {
    if (granted.has(required.slice(0, i))) return true;
  }
  return false;
}

/** The required scopes the token lacks (empty when it may proceed). */
export function missingScopes(granted: ReadonlySet<string>, required: readonly string[]): string[] {
  return required.filter((scope) => !grants(granted, scope));
}
