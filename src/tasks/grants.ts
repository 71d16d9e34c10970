/**
 * A task's grants: `server` (every tool of it) or `server:tool` (a tool name, or a pattern
 * with `*`), written as API key scopes are (src/core/scope.ts). A task never holds more than
 * its owner: every grant asked for must lie within the owner's credential scopes, or the
 * request is refused naming the grant (RFC 8693 §2.2.2 / RFC 6749 §5.2 `invalid_scope`).
 * Pure functions over typed values.
 */
import { type ScopeSet, validateScopePattern } from "../core/scope.js";

/** One grant, parsed. `tool` null: every tool of the server. */
export interface ParsedGrant {
  grant: string;
  server: string;
  tool: string | null;
}

export type GrantsCheck =
  | { ok: true; grants: ParsedGrant[] }
  | { ok: false; error: "invalid_scope" | "invalid_target"; reason: string };

/** At most this many grants per task. */
export const MAX_GRANTS = 64;

/**
 * Parses and validates what was asked: at least one grant, each a scope pattern naming a
 * configured server (never `*`: a task names the servers it reaches). Duplicates collapse.
 */
export function parseGrants(asked: readonly string[], servers: ReadonlySet<string>): GrantsCheck {
  if (asked.length === 0)
    return { ok: false, error: "invalid_scope", reason: "a task needs at least one grant" };
  if (asked.length > MAX_GRANTS)
    return { ok: false, error: "invalid_scope", reason: `a task may hold at most ${MAX_GRANTS} grants` };
  const out: ParsedGrant[] = [];
  const seen = new Set<string>();
  for (const raw of asked) {
    const grant = typeof raw === "string" ? raw.trim() : "";
    const invalid = validateScopePattern(grant);
    if (invalid !== null) return { ok: false, error: "invalid_scope", reason: invalid };
    const colon = grant.indexOf(":");
    const server = colon < 0 ? grant : grant.slice(0, colon);
    const toolPart = colon < 0 ? null : grant.slice(colon + 1);
    if (server === "*")
      return { ok: false, error: "invalid_scope", reason: "'*' is not a task grant: name the servers" };
    if (!servers.has(server))
      return {
        ok: false,
        error: "invalid_target",
        reason: `grant '${grant}' names unknown server '${server}'`,
      };
    const tool = toolPart === null || toolPart === "*" ? null : toolPart;
    const key = tool === null ? server : `${server}:${tool}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ grant: key, server, tool });
  }
  // A server-wide grant makes the same server's tool grants redundant.
  const wide = new Set(out.filter((g) => g.tool === null).map((g) => g.server));
  return { ok: true, grants: out.filter((g) => g.tool === null || !wide.has(g.server)) };
}

/**
 * Whether the owner's scopes cover a grant. A server-wide grant needs a server-wide scope; a
 * tool grant needs a server-wide scope or a tool pattern matching it (a pattern asked for, with
 * `*`, needs the same pattern or a server-wide scope: one pattern is never proved to lie
 * within another). `null` scopes (anonymous) cover nothing: anonymous callers own no task.
 */
export function ownerCovers(scopes: ScopeSet | null, grant: ParsedGrant): boolean {
  if (scopes === null) return false;
  if (scopes.allServers) return true;
  const server = scopes.servers.get(grant.server);
  if (server === undefined) return false;
  if (server.allTools) return true;
  if (grant.tool === null) return false;
  if (grant.tool.includes("*")) return scopes.source.includes(`${grant.server}:${grant.tool}`);
  return server.toolPatterns.some((re) => re.test(grant.tool as string));
}

/** The first grant the owner's scopes do not cover, or null when they cover every one. */
export function grantBeyondOwner(
  scopes: ScopeSet | null,
  grants: readonly ParsedGrant[],
): ParsedGrant | null {
  for (const g of grants) if (!ownerCovers(scopes, g)) return g;
  return null;
}

/** A glob of a tool grant as a matcher (same semantics as src/core/scope.ts). */
export function toolMatcher(pattern: string): (tool: string) => boolean {
  if (!pattern.includes("*")) return (tool) => tool === pattern;
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`, "s");
  return (tool) => re.test(tool);
}
