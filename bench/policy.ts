/**
 * Policy decision cost in one run: 200 rules (match-only and CEL `when` rules across 20
 * servers) decided over a varied input set, and filtering a 500-tool `tools/list` (one
 * decision per tool, as tools/call). Budget: decision p99 ≤ 10 µs, list filter ≤ 1 ms.
 */

import { compilePolicy } from "../src/authz/policy/compile.js";
import type { CompiledPolicy, PolicyInput, RiskTier } from "../src/authz/policy/types.js";

export interface PolicyCost {
  decisionP50Us: number;
  decisionP99Us: number;
  rules: number;
}

export interface ListFilterCost {
  listFilterP50Ms: number;
  listFilterP99Ms: number;
  tools: number;
}

const SERVERS = Array.from({ length: 20 }, (_, i) => (i % 4 === 3 ? `jira-${i}` : `server-${i}`));
const VERBS = ["get", "list", "search", "create", "update", "delete", "run", "export"];
const TIERS: RiskTier[] = ["read", "write", "destructive"];
const WHENS = [
  "principal.expiresInSeconds != null && principal.expiresInSeconds < 86400",
  "'repo:write' in principal.scopes",
  "context.arguments.limit <= 100",
  "principal.credentialAgeSeconds < 2592000",
  "context.time.getHours() >= 6",
];

/** 200 rules: per server 10 (allow read, allow write with a scope, review destructive, deny …). */
export function benchPolicyYaml(count = 200): string {
  const lines = ["rules:"];
  for (let i = 0; i < count; i++) {
    const server = SERVERS[i % SERVERS.length] as string;
    const verb = VERBS[i % VERBS.length] as string;
    const kind = i % 10;
    const effect = kind === 7 ? "deny" : kind === 8 ? "review" : "allow";
    lines.push(`  - id: rule-${i}`, `    effect: ${effect}`, "    match:");
    lines.push(`      methods: [tools/call${i % 5 === 0 ? ", resources/read" : ""}]`);
    lines.push(`      servers: [${i % 9 === 0 ? `"jira-*"` : server}]`);
    if (kind !== 6) lines.push(`      tools: ["${verb}_*"${i % 3 === 0 ? `, ${verb}_special` : ""}]`);
    if (effect === "allow") lines.push(`      tiers: [${TIERS[i % 2]}]`);
    if (i % 4 === 0) lines.push("      authMethods: [api_key, oauth]");
    if (i % 6 === 0) lines.push("      environments: [prod, staging]");
    if (i % 2 === 1) lines.push(`    when: ${JSON.stringify(WHENS[i % WHENS.length])}`);
  }
  return `${lines.join("\n")}\n`;
}

function input(i: number): PolicyInput {
  const api = i % 3 !== 0;
  return {
    principal: {
      id: `p${i % 50}`,
      kind: api ? "service" : "user",
      method: api ? "api_key" : "oauth",
      groups: i % 5 === 0 ? ["sre"] : [],
      scopes: api ? [] : ["repo:read", "repo:write"],
      tenant: null,
      environment: "prod",
      credentialId: `c${i}`,
      credentialAgeSeconds: 3600 + i,
      expiresInSeconds: i % 7 === 0 ? null : 7200,
    },
    task: null,
    actor: null,
    action: { method: i % 11 === 0 ? "resources/read" : "tools/call" },
    resource: {
      server: SERVERS[(i * 7) % SERVERS.length] as string,
      kind: "tool",
      name: `${VERBS[(i * 3) % VERBS.length]}_item_${i % 13}`,
      tier: TIERS[i % 3] as RiskTier,
      openWorld: i % 4 === 0,
      annotations: { readOnlyHint: i % 3 === 0 },
    },
    context: {
      arguments: { limit: i % 150, query: "status:open" },
      time: new Date(1_750_000_000_000 + i * 60_000),
      environment: i % 2 === 0 ? "prod" : "staging",
      clientName: "bench",
      clientVersion: "1.0",
      sourceAddress: "10.0.0.1",
      protocolVersion: "2025-06-18",
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

function compileBench(): CompiledPolicy {
  return compilePolicy([{ path: "bench/policy.yaml", text: benchPolicyYaml() }]);
}

/**
 * Per-decision latency: each sample times a batch of 32 decisions over different inputs
 * (single decisions are below timer resolution), so p99 is of 32-decision means.
 */
export function measurePolicy(samples = 20_000): PolicyCost {
  const policy = compileBench();
  const inputs = Array.from({ length: 1024 }, (_, i) => input(i));
  const batch = 32;
  let sink = 0;
  for (let i = 0; i < 50_000; i++)
    sink += policy.decide(inputs[i % inputs.length] as PolicyInput).ruleIds.length;
  const perOp: number[] = [];
  for (let s = 0; s < samples; s++) {
    const base = (s * batch) % inputs.length;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink += policy.decide(inputs[base + i] as PolicyInput).ruleIds.length;
    perOp.push(Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
  if (sink < 0) throw new Error("unreachable");
  perOp.sort((a, z) => a - z);
  return {
    decisionP50Us: round(percentile(perOp, 50)),
    decisionP99Us: round(percentile(perOp, 99)),
    rules: policy.ruleCount,
  };
}

/** Filtering a 500-tool tools/list for one caller: one tools/call decision per tool. */
export function measureListFilter(samples = 500): ListFilterCost {
  const policy = compileBench();
  const server = SERVERS[3] as string;
  const tools = Array.from({ length: 500 }, (_, i) => ({
    name: `${VERBS[i % VERBS.length]}_${i}`,
    tier: TIERS[i % 3] as RiskTier,
    openWorld: i % 5 === 0,
  }));
  const caller = input(1);
  const filter = () =>
    tools.filter(
      (t) =>
        policy.effect({
          ...caller,
          action: { method: "tools/call" },
          resource: {
            server,
            kind: "tool",
            name: t.name,
            tier: t.tier,
            openWorld: t.openWorld,
            annotations: {},
          },
        }) !== "deny",
    ).length;
  let sink = 0;
  for (let i = 0; i < 50; i++) sink += filter();
  const ms: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t0 = process.hrtime.bigint();
    sink += filter();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  if (sink < 0) throw new Error("unreachable");
  ms.sort((a, z) => a - z);
  return {
    listFilterP50Ms: round(percentile(ms, 50)),
    listFilterP99Ms: round(percentile(ms, 99)),
    tools: tools.length,
  };
}
