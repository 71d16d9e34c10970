/** How `portcullis policy explain|decision` show a decision, its rules and an audit record to a person. */
import { shown, type TierSource, type ToolRiskChoice } from "../authz/policy/cases.js";
import type { PolicyDecision, PolicyInput, RuleTrace } from "../authz/policy/types.js";
import type { StoredAuditRecord } from "../store/types.js";
import { table } from "./table.js";

const TIER_SOURCE: Readonly<Record<TierSource, string>> = {
  given: "given",
  operator: "operator pin in the config",
  annotations: "from the annotations given",
  pinned: "from the annotations of the definition the gateway pinned, in the store",
  unknown: "unknown: no tier given or pinned, so destructive and open-world, as in the gateway",
};

export function describeRequest(input: PolicyInput, risk: ToolRiskChoice | null): string {
  const r = input.resource;
  const target = r.name === null ? r.server : `${r.server} ${r.kind} ${r.name}`;
  const tool = risk ? `; tier ${risk.tier} (${TIER_SOURCE[risk.source]}), open-world ${risk.openWorld}` : "";
  return `${input.action.method} on ${target}${tool}`;
}

export function describePrincipal(input: PolicyInput): string {
  const p = input.principal;
  const list = (xs: readonly string[]) => (xs.length === 0 ? "-" : xs.join(" "));
  const expiry = p.expiresInSeconds === null ? "never expires" : `expires in ${p.expiresInSeconds}s`;
  return `${p.method} ${p.kind} "${p.id}"; scopes ${list(p.scopes)}; groups ${list(p.groups)}; ${expiry}`;
}

/** The task and actor of a task token's decision. */
export function describeTask(input: PolicyInput): string {
  const t = input.task;
  if (t === null) return "-";
  const budget = t.remainingCalls === null ? "no budget" : `${t.remainingCalls} calls left`;
  const actor = input.actor === null ? "" : `; actor ${input.actor.chain.join(" ← ")}`;
  return `"${t.id}" (${t.purpose || "no purpose"}); ${budget}; ${t.ageSeconds}s old${actor}`;
}

export function traceLines(trace: readonly RuleTrace[]): string {
  return table(
    trace.map((t) => ({
      match: t.matched ? "MATCH" : "no",
      effect: t.effect,
      rule: t.id,
      where: `${shown(t.file)}:${t.line}`,
      why: t.why,
    })),
    ["match", "effect", "rule", "where", "why"],
    "(no rules)",
  )
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

export function decisionLine(d: PolicyDecision): string {
  const review = d.reviewTimeoutSeconds === undefined ? "" : ` (review within ${d.reviewTimeoutSeconds}s)`;
  return `${d.effect.toUpperCase()}: ${d.reason}${review}`;
}

export function auditView(r: StoredAuditRecord): Record<string, unknown> {
  return {
    decisionId: r.decisionId ?? null,
    at: r.at.toISOString(),
    environment: r.environment,
    principal: r.principal,
    method: r.method,
    credentialId: r.credentialId,
    server: r.server,
    rpcMethod: r.rpcMethod,
    tool: r.tool,
    decision: r.decision,
    ruleIds: r.ruleIds ?? [],
    policyVersion: r.policyVersion ?? null,
    reason: r.reason,
    detail: r.detail,
  };
}

export function humanAudit(v: Record<string, unknown>): string {
  const or = (x: unknown) => (x === null || x === undefined || x === "" ? "-" : String(x));
  const rules = v.ruleIds as string[];
  const what = [v.rpcMethod, v.server, v.tool].filter((x) => x !== null && x !== undefined).join(" ");
  return [
    `decision     ${v.decisionId}: ${String(v.decision).toUpperCase()}`,
    `at           ${v.at} (environment ${v.environment})`,
    `who          ${or(v.principal)} (${or(v.method)}${v.credentialId ? `, credential ${v.credentialId}` : ""})`,
    `what         ${or(what)}`,
    `rules        ${rules.length === 0 ? "none" : rules.join(", ")}`,
    `policy       ${or(v.policyVersion)}`,
    `reason       ${v.reason}`,
  ].join("\n");
}
