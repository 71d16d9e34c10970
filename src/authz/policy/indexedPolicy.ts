/**
 * A compiled policy: rules indexed by method, then by server (cached per server, bounded), so
 * a decision visits only the candidate rules. Deny overrides review, review overrides allow;
 * a `when` that fails to evaluate matches for deny rules only (fail closed); see ./compile.ts.
 */
import type { CompiledCondition } from "./condition.js";
import { Evaluation, type FieldCheck } from "./ruleMatch.js";
import type { CompiledPolicy, Effect, PolicyDecision, PolicyInput, RuleTrace } from "./types.js";

export const DEFAULT_REVIEW_TIMEOUT_SECONDS = 300;
/** Bound on cached (method, server) candidate sets; beyond it candidates are computed per call. */
const MAX_CACHED_SERVERS = 1024;

export interface CompiledRule {
  id: string;
  file: string;
  line: number;
  effect: Effect;
  methods: ReadonlySet<string> | null;
  serverTest: ((ev: Evaluation) => boolean) | null;
  /** Every structured check in file-format order (explain). */
  checks: readonly FieldCheck[];
  /** The checks other than methods and servers, cheapest first (decide; index did the rest). */
  rest: readonly FieldCheck[];
  when: CompiledCondition | null;
  reviewTimeoutSeconds: number;
}

interface Candidates {
  deny: CompiledRule[];
  review: CompiledRule[];
  allow: CompiledRule[];
}

type WhenOutcome = { matched: boolean; why: string; error?: string };

function evaluateWhen(rule: CompiledRule, ev: Evaluation): WhenOutcome {
  if (!rule.when) return { matched: true, why: "all match fields hold" };
  const r = rule.when.evaluate(ev.bindings());
  if (r.ok) return { matched: r.value, why: `when is ${r.value}` };
  const matched = rule.effect === "deny";
  return {
    matched,
    why: `when failed (${r.error}); counts as ${matched ? "matching (deny fails closed)" : "not matching"}`,
    error: r.error,
  };
}

function restHolds(rule: CompiledRule, ev: Evaluation): boolean {
  for (const c of rule.rest) if (!c.test(ev)) return false;
  return true;
}

function ruleMatches(rule: CompiledRule, ev: Evaluation): boolean {
  if (!restHolds(rule, ev)) return false;
  if (!rule.when) return true;
  const r = rule.when.evaluate(ev.bindings());
  return r.ok ? r.value : rule.effect === "deny";
}

function append(xs: string[] | null, x: string): string[] {
  if (xs === null) return [x];
  xs.push(x);
  return xs;
}

function list(ids: readonly string[]): string {
  return ids.join(", ");
}

/** The CompiledPolicy built by compilePolicy (./compile.ts). */
export class IndexedPolicy implements CompiledPolicy {
  readonly ruleCount: number;
  private readonly byMethod = new Map<string, Candidates>();
  private readonly otherMethods: Candidates;
  private readonly byServer = new Map<Candidates, Map<string, Candidates>>();

  constructor(
    readonly version: string,
    readonly sources: readonly string[],
    private readonly rules: readonly CompiledRule[],
  ) {
    this.ruleCount = rules.length;
    const named = new Set<string>();
    for (const r of rules) if (r.methods) for (const m of r.methods) named.add(m);
    for (const m of named) this.byMethod.set(m, group(rules.filter((r) => !r.methods || r.methods.has(m))));
    this.otherMethods = group(rules.filter((r) => !r.methods));
  }

  private candidates(input: PolicyInput, ev: Evaluation): Candidates {
    const byMethod = this.byMethod.get(input.action.method) ?? this.otherMethods;
    let perServer = this.byServer.get(byMethod);
    if (!perServer) {
      perServer = new Map();
      this.byServer.set(byMethod, perServer);
    }
    const server = input.resource.server;
    let c = perServer.get(server);
    if (!c) {
      const keep = (r: CompiledRule) => !r.serverTest || r.serverTest(ev);
      c = {
        deny: byMethod.deny.filter(keep),
        review: byMethod.review.filter(keep),
        allow: byMethod.allow.filter(keep),
      };
      if (perServer.size < MAX_CACHED_SERVERS) perServer.set(server, c);
    }
    return c;
  }

  /** Only the effect: stops at the first matching rule of each stage (list filtering). */
  effect(input: PolicyInput): Effect {
    const ev = new Evaluation(input);
    const c = this.candidates(input, ev);
    for (const r of c.deny) {
      if (!restHolds(r, ev)) continue;
      const w = r.when?.evaluate(ev.bindings());
      if (!(w?.ok && !w.value)) return "deny";
    }
    for (const r of c.review) if (ruleMatches(r, ev)) return "review";
    for (const r of c.allow) if (ruleMatches(r, ev)) return "allow";
    return "deny";
  }

  decide(input: PolicyInput): PolicyDecision {
    const ev = new Evaluation(input);
    const c = this.candidates(input, ev);
    let ids: string[] | null = null;
    let whenErrors: string[] | null = null;
    for (const r of c.deny) {
      if (!restHolds(r, ev)) continue;
      const w = r.when?.evaluate(ev.bindings());
      if (w?.ok && !w.value) continue;
      ids = append(ids, r.id);
      if (w && !w.ok) whenErrors = append(whenErrors, `${r.id}: ${w.error}`);
    }
    if (ids) return this.denial(ids, whenErrors ?? []);
    let timeout = Number.POSITIVE_INFINITY;
    for (const r of c.review) {
      if (ruleMatches(r, ev)) {
        ids = append(ids, r.id);
        if (r.reviewTimeoutSeconds < timeout) timeout = r.reviewTimeoutSeconds;
      }
    }
    if (ids) return this.decision("review", ids, timeout);
    for (const r of c.allow) if (ruleMatches(r, ev)) ids = append(ids, r.id);
    return this.decision(ids ? "allow" : "deny", ids ?? []);
  }

  private decision(effect: Effect, ruleIds: string[], timeout?: number): PolicyDecision {
    const reason =
      ruleIds.length === 0
        ? "no rule allows this"
        : `${effect === "allow" ? "allowed" : effect === "deny" ? "denied" : "review required"} by ${list(ruleIds)}`;
    const d: PolicyDecision = { effect, ruleIds, reason, policyVersion: this.version };
    if (effect === "review") d.reviewTimeoutSeconds = timeout ?? DEFAULT_REVIEW_TIMEOUT_SECONDS;
    return d;
  }

  /** A deny by rules; a deny condition that failed to evaluate is named in the audit reason. */
  private denial(ids: string[], whenErrors: readonly string[]): PolicyDecision {
    const d = this.decision("deny", ids);
    if (whenErrors.length > 0) d.reason += ` (condition errors, failing closed: ${whenErrors.join("; ")})`;
    return d;
  }

  explain(input: PolicyInput): { decision: PolicyDecision; trace: RuleTrace[] } {
    const ev = new Evaluation(input);
    const trace: RuleTrace[] = [];
    const matched: Record<Effect, CompiledRule[]> = { deny: [], review: [], allow: [] };
    const whenErrors: string[] = [];
    for (const r of this.rules) {
      const base = { id: r.id, file: r.file, line: r.line, effect: r.effect };
      const failing = r.checks.find((c) => !c.test(ev));
      if (failing) {
        trace.push({
          ...base,
          matched: false,
          why: `${failing.field}: ${failing.actual(input)} matches none of ${JSON.stringify(failing.expected)}`,
        });
        continue;
      }
      const w = evaluateWhen(r, ev);
      if (w.matched) matched[r.effect].push(r);
      if (w.matched && w.error) whenErrors.push(`${r.id}: ${w.error}`);
      trace.push({ ...base, matched: w.matched, why: w.why });
    }
    let decision: PolicyDecision;
    if (matched.deny.length > 0) {
      decision = this.denial(
        matched.deny.map((r) => r.id),
        whenErrors,
      );
    } else if (matched.review.length > 0) {
      decision = this.decision(
        "review",
        matched.review.map((r) => r.id),
        Math.min(...matched.review.map((r) => r.reviewTimeoutSeconds)),
      );
    } else {
      decision = this.decision(
        matched.allow.length > 0 ? "allow" : "deny",
        matched.allow.map((r) => r.id),
      );
    }
    return { decision, trace };
  }
}

function group(rules: readonly CompiledRule[]): Candidates {
  return {
    deny: rules.filter((r) => r.effect === "deny"),
    review: rules.filter((r) => r.effect === "review"),
    allow: rules.filter((r) => r.effect === "allow"),
  };
}
