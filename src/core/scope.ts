/**
 * Credential scopes: `server`, `server:tool` or `*` patterns (`*` in the tool part matches
 * any run of characters). Compiled once when a key is loaded, so a check on the request
 * path is a map lookup and, at most, a few anchored regular expressions.
 */

export interface ServerScope {
  /** Every tool of the server is in scope. */
  allTools: boolean;
  toolPatterns: RegExp[];
}

export interface ScopeSet {
  allServers: boolean;
  servers: Map<string, ServerScope>;
  /** The patterns as written, for display. */
  source: readonly string[];
}

const PATTERN = /^(\*|[a-z0-9][a-z0-9-]{0,62})(?::(.+))?$/;

export function validateScopePattern(pattern: string): string | null {
  const m = PATTERN.exec(pattern);
  if (!m) return `'${pattern}' is not a scope: use server, server:tool or server:prefix*`;
  if (m[1] === "*" && m[2] !== undefined) return `'${pattern}': '*' cannot name tools; use '*' alone`;
  return null;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`, "s");
}

export function compileScopes(patterns: readonly string[]): ScopeSet {
  const set: ScopeSet = { allServers: false, servers: new Map(), source: patterns };
  for (const pattern of patterns) {
    const m = PATTERN.exec(pattern);
    if (!m) continue; // validated at creation; an unknown pattern grants nothing
    const server = m[1] as string;
    if (server === "*") {
      set.allServers = true;
      continue;
    }
    let scope = set.servers.get(server);
    if (!scope) {
      scope = { allTools: false, toolPatterns: [] };
      set.servers.set(server, scope);
    }
    const tool = m[2];
    if (tool === undefined || tool === "*") scope.allTools = true;
    else scope.toolPatterns.push(globToRegExp(tool));
  }
  return set;
}

/** May the caller reach this server at all (any tool of it)? */
export function allowsServer(scopes: ScopeSet | null, server: string): boolean {
  return scopes === null || scopes.allServers || scopes.servers.has(server);
}

/** May the caller call this tool on this server? */
export function allowsTool(scopes: ScopeSet | null, server: string, tool: string): boolean {
  if (scopes === null || scopes.allServers) return true;
  const scope = scopes.servers.get(server);
  if (!scope) return false;
  if (scope.allTools) return true;
  for (const re of scope.toolPatterns) if (re.test(tool)) return true;
  return false;
}

/** True when a tools/list for this server must be filtered for this caller. */
export function restrictsTools(scopes: ScopeSet | null, server: string): boolean {
  if (scopes === null || scopes.allServers) return false;
  return !scopes.servers.get(server)?.allTools;
}
