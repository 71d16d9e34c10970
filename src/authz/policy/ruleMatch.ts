/**
 * One rule's `match` fields compiled to checks over a decision's input (see ./compile.ts for
 * the semantics): AND across fields, OR within a list; a field whose input is null does not
 * hold. Deny and review rules compare `servers` and `tools` on the normalised name
 * (./normalise.ts), allow rules on the exact name, so a variant spelling never gains an allow.
 */
import { ConditionBindings } from "./condition.js";
import { compileNamePatterns, compileWorkloadPatterns, type NameTest } from "./glob.js";
import { normaliseName } from "./normalise.js";
import type { RuleMatch } from "./schema.js";
import type { Effect, PolicyInput } from "./types.js";

/** Per-decision state: the input plus lazily computed normalised names and CEL bindings. */
export class Evaluation {
  private tool: string | null | undefined;
  private server: string | undefined;
  private cel: ConditionBindings | undefined;
  constructor(readonly input: PolicyInput) {}
  normalisedTool(): string | null {
    if (this.tool === undefined) {
      const n = this.input.resource.name;
      this.tool = n === null ? null : normaliseName(n);
    }
    return this.tool;
  }
  normalisedServer(): string {
    if (this.server === undefined) this.server = normaliseName(this.input.resource.server);
    return this.server;
  }
  bindings(): ConditionBindings {
    if (this.cel === undefined) this.cel = new ConditionBindings(this.input);
    return this.cel;
  }
}

export interface FieldCheck {
  field: keyof RuleMatch;
  test(ev: Evaluation): boolean;
  /** The input value, for explain. */
  actual(input: PolicyInput): string;
  expected: readonly unknown[];
}

const show = (v: unknown) => JSON.stringify(v);

/** A field that holds when the input's value is one of `expected`. */
function oneOf<T>(
  field: keyof RuleMatch,
  expected: readonly T[],
  inputValue: (input: PolicyInput) => T,
): FieldCheck {
  const set = new Set<T>(expected);
  return {
    field,
    expected,
    test: (ev) => set.has(inputValue(ev.input)),
    actual: (i) => show(inputValue(i)),
  };
}

export function compileMatch(match: RuleMatch, effect: Effect): FieldCheck[] {
  const normalised = effect !== "allow";
  const checks: FieldCheck[] = [];
  if (match.methods && !match.methods.includes("*")) {
    checks.push(oneOf("methods", match.methods, (i) => i.action.method));
  }
  if (match.servers) {
    const t = compileNamePatterns(match.servers, normalised);
    checks.push({
      field: "servers",
      expected: match.servers,
      test: normalised ? (ev) => t(ev.normalisedServer()) : (ev) => t(ev.input.resource.server),
      actual: (i) => show(i.resource.server),
    });
  }
  if (match.tools) {
    const t: NameTest = compileNamePatterns(match.tools, normalised);
    checks.push({
      field: "tools",
      expected: match.tools,
      test: normalised
        ? (ev) => {
            const n = ev.normalisedTool();
            return n !== null && t(n);
          }
        : (ev) => ev.input.resource.name !== null && t(ev.input.resource.name),
      actual: (i) => show(i.resource.name),
    });
  }
  if (match.tiers) checks.push(oneOf<string | null>("tiers", match.tiers, (i) => i.resource.tier));
  if (match.openWorld !== undefined) {
    checks.push(oneOf<boolean | null>("openWorld", [match.openWorld], (i) => i.resource.openWorld));
  }
  if (match.authMethods)
    checks.push(oneOf<string>("authMethods", match.authMethods, (i) => i.principal.method));
  if (match.principalKinds) {
    checks.push(oneOf<string>("principalKinds", match.principalKinds, (i) => i.principal.kind));
  }
  if (match.environments) {
    checks.push(oneOf("environments", match.environments, (i) => i.context.environment));
  }
  if (match.groups) {
    const set = new Set(match.groups);
    checks.push({
      field: "groups",
      expected: match.groups,
      test: (ev) => ev.input.principal.groups.some((g) => set.has(g)),
      actual: (i) => show(i.principal.groups),
    });
  }
  if (match.workloads) {
    const t = compileWorkloadPatterns(match.workloads);
    checks.push({
      field: "workloads",
      expected: match.workloads,
      test: (ev) => ev.input.principal.kind === "workload" && t(ev.input.principal.id),
      actual: (i) => show(i.principal.kind === "workload" ? i.principal.id : null),
    });
  }
  return checks;
}

/** Order used by decide(): Set lookups before name normalisation and regular expressions. */
const COST: Partial<Record<keyof RuleMatch, number>> = { groups: 1, tools: 2, workloads: 2 };

/** The checks other than methods and servers (the index does those), cheapest first. */
export function remainingChecks(checks: readonly FieldCheck[]): FieldCheck[] {
  return checks
    .filter((c) => c.field !== "methods" && c.field !== "servers")
    .sort((a, b) => (COST[a.field] ?? 0) - (COST[b.field] ?? 0));
}
