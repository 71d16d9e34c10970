/**
 * The policy at a task's creation (docs/tasks.md): for every tool the task would reach — a
 * tool grant's tool, the known tools a pattern matches, or every known tool of a server-wide
 * grant (the tool catalogue's pins) — the owner must be allowed `tasks/mint` (who may mint
 * tasks for what) and must not be denied `tools/call` (a task never holds what its owner may
 * not do). A server whose tools are not known yet is decided once for the server itself.
 * The policy is still evaluated on every call the task makes. Pure over its inputs.
 */
import { policyInput, resourceFacts, type ToolFactsSource } from "../authz/authorize.js";
import type { CompiledPolicy, PolicyDecision } from "../authz/policy/types.js";
import type { Principal } from "../core/principal.js";
import { type ParsedGrant, toolMatcher } from "./grants.js";

export const MINT_METHOD = "tasks/mint";

export type MintPolicyCheck =
  | { ok: true; ruleIds: string[]; checked: number }
  | { ok: false; reason: string; ruleIds: string[] };

export interface MintPolicyInput {
  policy: CompiledPolicy;
  owner: Principal;
  grants: readonly ParsedGrant[];
  /** Known tools per server (tool pins). */
  knownTools: (server: string) => readonly string[];
  tools: ToolFactsSource;
  environment: string;
  now: Date;
}

export function checkMintPolicy(input: MintPolicyInput): MintPolicyCheck {
  const { policy, owner, tools } = input;
  const ctx = { environment: input.environment, sourceAddress: null, protocolVersion: null, now: input.now };
  const rules = new Set<string>();
  let checked = 0;
  const decide = (method: string, server: string, tool: string | null): PolicyDecision => {
    const resource =
      tool === null
        ? resourceFacts(server, MINT_METHOD, null, tools)
        : resourceFacts(server, "tools/call", tool, tools);
    return policy.decide(policyInput(owner, method, resource, {}, ctx));
  };
  for (const grant of input.grants) {
    const known = input.knownTools(grant.server);
    const targets =
      grant.tool === null
        ? known
        : grant.tool.includes("*")
          ? known.filter(toolMatcher(grant.tool))
          : [grant.tool];
    if (targets.length === 0) {
      // Nothing known to decide per tool: the server itself must be mintable.
      const mint = decide(MINT_METHOD, grant.server, null);
      checked++;
      if (mint.effect !== "allow")
        return {
          ok: false,
          reason: `policy does not allow ${MINT_METHOD} on server ${grant.server} (${mint.effect}: ${mint.reason})`,
          ruleIds: mint.ruleIds,
        };
      for (const id of mint.ruleIds) rules.add(id);
      continue;
    }
    for (const tool of targets) {
      checked++;
      const mint = decide(MINT_METHOD, grant.server, tool);
      if (mint.effect !== "allow")
        return {
          ok: false,
          reason: `policy does not allow ${MINT_METHOD} for ${grant.server}:${tool} (${mint.effect}: ${mint.reason})`,
          ruleIds: mint.ruleIds,
        };
      const call = decide("tools/call", grant.server, tool);
      if (call.effect === "deny")
        return {
          ok: false,
          reason: `policy denies the owner tools/call of ${grant.server}:${tool} (${call.reason})`,
          ruleIds: call.ruleIds,
        };
      for (const id of mint.ruleIds) rules.add(id);
    }
  }
  return { ok: true, ruleIds: [...rules], checked };
}
