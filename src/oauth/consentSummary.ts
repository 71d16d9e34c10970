/**
 * What a consent unlocks, in the user's terms (MCP security best practices, "Confused Deputy
 * Problem": the consent screen must let the user see what they grant): for each MCP server,
 * whether the scopes reach its tools at all, and which tools with scopes of their own they
 * add or leave out. Scopes follow the gateway's hierarchy (../authz/oauthScopes.ts).
 */
import { grants, missingScopes } from "../authz/oauthScopes.js";

/** The scopes one MCP endpoint requires: `scopes` for any request, `tools` per tool in addition. */
export interface ResourceAccess {
  scopes: readonly string[];
  tools: Readonly<Record<string, readonly string[]>>;
}

export interface ConsentSummary {
  /** True when the granted scopes satisfy the server's base requirement. */
  reachesServer: boolean;
  /** Tools with scopes of their own that the grant covers. */
  toolsUnlocked: string[];
  /** Tools with scopes of their own that stay out of reach. */
  toolsWithheld: string[];
}

export function summarizeConsent(access: ResourceAccess, granted: readonly string[]): ConsentSummary {
  const set = new Set(granted);
  const reachesServer = missingScopes(set, access.scopes).length === 0;
  const toolsUnlocked: string[] = [];
  const toolsWithheld: string[] = [];
  for (const [tool, required] of Object.entries(access.tools).sort(([a], [b]) => a.localeCompare(b))) {
    if (reachesServer && required.every((s) => grants(set, s))) toolsUnlocked.push(tool);
    else toolsWithheld.push(tool);
  }
  return { reachesServer, toolsUnlocked, toolsWithheld };
}
