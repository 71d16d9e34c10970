/**
 * A case (./caseFormat.ts) as the policy input the listener would build for that request
 * (authorize.ts `resourceFacts`). A tool's tier comes from, in order: the case or flag, the
 * operator's pin in the config, annotations given with the case, the definition the gateway
 * pinned in the store (`policy explain`: as the gateway computes it, ../toolFacts.ts), else
 * "unknown": destructive and open-world, as the gateway treats a tool it has not seen listed.
 */
import type { Config } from "../../config/schema.js";
import type { ToolPinRecord } from "../../store/types.js";
import { resourceFacts } from "../authorize.js";
import { riskTierOf, type TierPin } from "../riskTier.js";
import { recordRisk } from "../toolFacts.js";
import { type Case, type CaseRequest, targetMethod } from "./caseFormat.js";
import type { PolicyInput, ResourceFacts, RiskTier } from "./types.js";

/** How a tool's tier was found, shown by explain and test. */
export type TierSource = "given" | "operator" | "annotations" | "pinned" | "unknown";

/** The tool pins the gateway keeps in the store, by server and tool (what `policy explain` reads). */
export type PinnedTools = (server: string, tool: string) => ToolPinRecord | undefined;

export interface ToolRiskChoice {
  tier: RiskTier;
  openWorld: boolean;
  source: TierSource;
}

export function operatorPin(config: Config, server: string, tool: string): TierPin | undefined {
  const tools: Readonly<Record<string, TierPin>> | undefined = config.servers[server]?.tools;
  return tools !== undefined && Object.hasOwn(tools, tool) ? tools[tool] : undefined;
}

/**
 * The tier: given > operator pin > annotations > unknown (destructive). Open-world: given >
 * pin > annotations (missing hint = open) > false when the tier was given (the caller
 * described the tool), true otherwise (the gateway's stricter assumption).
 */
export function chooseRisk(r: CaseRequest, pin: TierPin | undefined, stored?: ToolPinRecord): ToolRiskChoice {
  if (r.tier !== undefined) {
    const fromAnnotations = r.annotations === undefined ? undefined : riskTierOf(r.annotations).openWorld;
    return {
      tier: r.tier,
      openWorld: r.openWorld ?? pin?.openWorld ?? fromAnnotations ?? false,
      source: "given",
    };
  }
  if (stored !== undefined && r.annotations === undefined) {
    // Exactly what the gateway decides with: the pinned (and, while changed, the served) annotations.
    const risk = recordRisk(stored, pin);
    return {
      tier: risk.tier,
      openWorld: r.openWorld ?? risk.openWorld,
      source: risk.source === "operator" ? "operator" : "pinned",
    };
  }
  if (pin !== undefined || r.annotations !== undefined) {
    const risk = riskTierOf(r.annotations ?? {}, pin);
    return { tier: risk.tier, openWorld: r.openWorld ?? risk.openWorld, source: risk.source };
  }
  return { tier: "destructive", openWorld: r.openWorld ?? true, source: "unknown" };
}

export interface BuiltInput {
  input: PolicyInput;
  /** Tools only: where the tier came from. */
  risk: ToolRiskChoice | null;
}

export function buildInput(c: Case, config: Config, now: Date, pinned?: PinnedTools): BuiltInput {
  const r = c.request;
  const name = r.tool ?? r.uri ?? r.prompt ?? null;
  let risk: ToolRiskChoice | null = null;
  // tasks/mint of a tool is decided on the tool's facts, as the task service asks it; of a
  // whole server (no tool), on the server's.
  const method = name === null ? r.method : targetMethod(r.method);
  const resource: ResourceFacts = resourceFacts(r.server, method, name, {
    facts: (server, tool) => {
      risk = chooseRisk(r, operatorPin(config, server, tool), pinned?.(server, tool));
      return { tier: risk.tier, openWorld: risk.openWorld, annotations: r.annotations ?? {} };
    },
  });
  const p = c.principal;
  return {
    input: {
      principal: {
        id: p.id,
        kind:
          p.kind ??
          (p.method === "anonymous"
            ? "anonymous"
            : p.method === "jwt_svid" || p.method === "mtls"
              ? "workload"
              : "service"),
        method: p.method,
        groups: p.groups,
        scopes: p.scopes,
        tenant: p.tenant,
        environment: c.environment,
        credentialId: p.credentialId,
        credentialAgeSeconds: p.credentialAgeSeconds,
        expiresInSeconds: p.expiresInSeconds,
      },
      task: c.task,
      actor: c.actor.length === 0 ? null : { sub: c.actor[0] as string, chain: c.actor },
      action: { method: r.method },
      resource,
      context: {
        arguments: c.arguments,
        time: c.time === undefined ? now : new Date(c.time),
        environment: c.environment,
        ...c.context,
      },
    },
    risk,
  };
}
