/**
 * RFC 8693 §2.1 and §5: a token exchange never yields more than its subject token holds. The
 * owner is narrowed to the server the subject token is bound to, and the task's OAuth scopes
 * to what the subject's `scope` grants (or, for subjects without OAuth scopes, to the
 * endpoint's own), checked against what the asked tools need.
 */
import { missingScopes } from "../authz/oauthScopes.js";
import type { Principal } from "../core/principal.js";
import { allowsServer, compileScopes } from "../core/scope.js";
import type { ResourceAccess } from "./consentSummary.js";

/**
 * The owner as far as the subject token reaches: a token bound to an endpoint (access token,
 * JWT-SVID) reaches that endpoint's server only, whatever its principal would otherwise say.
 */
export function ownerWithin(subject: Principal, audienceServer: string | null): Principal {
  if (audienceServer === null) return subject;
  const within = compileScopes([audienceServer]);
  if (subject.scopes === null || subject.scopes.allServers) return { ...subject, scopes: within };
  return allowsServer(subject.scopes, audienceServer) ? subject : { ...subject, scopes: compileScopes([]) };
}

/**
 * The OAuth scopes the task is granted (RFC 6749 §3.3) and the check that they unlock what it
 * asks (MCP "Scope Challenge": the endpoint's scopes for any call, a tool's own for that tool).
 * A person's (or machine client's) token grants what its `scope` says and no more; `scope` in
 * the request narrows it. Other subjects have no OAuth scopes: a requested `scope` must be the
 * endpoint's, and then narrows the tools the same way.
 */
export function checkOAuthScopes(
  owner: Principal,
  requested: readonly string[] | null,
  access: ResourceAccess,
  tools: readonly string[] | null,
): { ok: true; scope: string[] | null } | { ok: false; reason: string } {
  const held = owner.oauthScopes;
  const known = new Set([...access.scopes, ...Object.values(access.tools).flat()]);
  if (requested !== null) {
    const beyond = held === null ? requested.filter((s) => !known.has(s)) : missingScopes(held, requested);
    if (beyond.length > 0) return { ok: false, reason: `scope beyond the subject's: ${beyond.join(" ")}` };
  }
  const effective = requested !== null ? new Set(requested) : held;
  if (effective === null) return { ok: true, scope: null };
  const base = missingScopes(effective, access.scopes);
  if (base.length > 0) return { ok: false, reason: `scope lacks the endpoint's ${base.join(" ")}` };
  const toolNames = tools ?? Object.keys(access.tools);
  for (const tool of toolNames) {
    const needed = Object.hasOwn(access.tools, tool) ? (access.tools[tool] ?? []) : [];
    const missing = missingScopes(effective, needed);
    if (missing.length > 0)
      return {
        ok: false,
        reason:
          tools === null
            ? `scope does not unlock ${tool} (${missing.join(" ")}); the task asked for every tool`
            : `scope does not unlock ${tool} (${missing.join(" ")})`,
      };
  }
  return { ok: true, scope: [...effective] };
}
