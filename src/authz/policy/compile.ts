/**
 * Compiles policy files into an immutable, indexed decision function.
 *
 * Decision semantics:
 * - deny overrides review, review overrides allow; when no rule matches the decision is
 *   deny with reason "no rule allows this" and no rule ids;
 * - `ruleIds` lists every matching rule of the winning effect, in file order;
 * - a rule matches when every `match` field holds (AND across fields, OR within a list) and
 *   its `when` condition, if any, is true;
 * - a `when` that fails to evaluate (a missing argument key, a null compared with a number,
 *   a non-bool value) counts as NOT matching for allow and review rules and as MATCHING for
 *   deny rules: an error never widens access (fail closed);
 * - review waits at most the smallest `review.timeoutSeconds` among the matching review
 *   rules (default 300 s).
 *
 * Name matching is asymmetric on purpose: deny and review rules compare `servers` and
 * `tools` on a normalised form of both pattern and name (NFKC, case-folded, invisible
 * characters removed, look-alike letters folded; see normalise.ts), so a variant spelling
 * of a denied tool is still denied; allow rules compare the exact name, so a variant never
 * gains an allow. A match field whose input is null (no tool name, no tier for a
 * server-wide method) does not hold. `methods` compare exactly.
 *
 * Cost: structured fields are Set lookups and precompiled regular expressions; rules are
 * indexed by method, then by server (cached per server), so a decision visits only the
 * candidate rules; CEL runs only for a candidate's `when`, over bindings built lazily once.
 */

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LineCounter, type Node, parseDocument, Scalar } from "yaml";
import { lineOf, nodeAt } from "../../config/yamlLocation.js";
import { type CompiledCondition, ConditionBindings, ConditionError, compileCondition } from "./condition.js";
import { compileNamePatterns, type NameTest } from "./glob.js";
import { normaliseName } from "./normalise.js";
import { allowedKeysAt, PolicyFile, type RuleMatch } from "./schema.js";
import {
  type CompiledPolicy,
  type Effect,
  type PolicyDecision,
  PolicyError,
  type PolicyInput,
  type RuleTrace,
} from "./types.js";

export const DEFAULT_REVIEW_TIMEOUT_SECONDS = 300;
/** Bound on cached (method, server) candidate sets; beyond it candidates are computed per call. */
const MAX_CACHED_SERVERS = 1024;

/** Per-decision state: the input plus lazily computed normalised names and CEL bindings. */
class Evaluation {
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

interface FieldCheck {
  field: keyof RuleMatch;
  test(ev: Evaluation): boolean;
  /** The input value, for explain. */
  actual(input: PolicyInput): string;
  expected: readonly unknown[];
}

interface CompiledRule {
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

class Policy implements CompiledPolicy {
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

const show = (v: unknown) => JSON.stringify(v);

function compileMatch(match: RuleMatch, effect: Effect): FieldCheck[] {
  const normalised = effect !== "allow";
  const checks: FieldCheck[] = [];
  if (match.methods && !match.methods.includes("*")) {
    const set = new Set(match.methods);
    checks.push({
      field: "methods",
      expected: match.methods,
      test: (ev) => set.has(ev.input.action.method),
      actual: (i) => show(i.action.method),
    });
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
  if (match.tiers) {
    const set = new Set<string | null>(match.tiers);
    checks.push({
      field: "tiers",
      expected: match.tiers,
      test: (ev) => set.has(ev.input.resource.tier),
      actual: (i) => show(i.resource.tier),
    });
  }
  if (match.openWorld !== undefined) {
    const want = match.openWorld;
    checks.push({
      field: "openWorld",
      expected: [want],
      test: (ev) => ev.input.resource.openWorld === want,
      actual: (i) => show(i.resource.openWorld),
    });
  }
  if (match.authMethods) {
    const set = new Set<string>(match.authMethods);
    checks.push({
      field: "authMethods",
      expected: match.authMethods,
      test: (ev) => set.has(ev.input.principal.method),
      actual: (i) => show(i.principal.method),
    });
  }
  if (match.principalKinds) {
    const set = new Set<string>(match.principalKinds);
    checks.push({
      field: "principalKinds",
      expected: match.principalKinds,
      test: (ev) => set.has(ev.input.principal.kind),
      actual: (i) => show(i.principal.kind),
    });
  }
  if (match.environments) {
    const set = new Set(match.environments);
    checks.push({
      field: "environments",
      expected: match.environments,
      test: (ev) => set.has(ev.input.context.environment),
      actual: (i) => show(i.context.environment),
    });
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
  return checks;
}

/** Order used by decide(): Set lookups before name normalisation and regular expressions. */
const COST: Partial<Record<keyof RuleMatch, number>> = { groups: 1, tools: 2 };

function pathText(path: readonly PropertyKey[]): string {
  let s = "";
  for (const seg of path) s += typeof seg === "number" ? `[${seg}]` : s ? `.${String(seg)}` : String(seg);
  return s;
}

/** A short content hash of the sources, in order: identifies the policy in audit records. */
export function policyVersion(files: ReadonlyArray<{ text: string }>): string {
  const h = createHash("sha256");
  for (const f of files) h.update(`${Buffer.byteLength(f.text)}:`).update(f.text);
  return h.digest("hex").slice(0, 12);
}

/**
 * Validates and compiles policy files. Throws the first PolicyError (file:line): bad YAML,
 * unknown keys, wrong values, a `when` that does not parse or check, duplicate rule ids.
 */
export function compilePolicy(files: ReadonlyArray<{ path: string; text: string }>): CompiledPolicy {
  const rules: CompiledRule[] = [];
  const seen = new Map<string, { file: string; line: number }>();
  for (const { path: file, text } of files) {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
    const yamlError = doc.errors[0];
    if (yamlError) {
      const line = lc.linePos(yamlError.pos[0]).line;
      throw new PolicyError(file, line, `invalid YAML: ${yamlError.message.split("\n")[0]}`);
    }
    const root = doc.contents as Node | null;
    if (root === null) throw new PolicyError(file, 1, "empty policy file: expected `rules:`");
    const parsed = PolicyFile.safeParse(doc.toJS());
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (!issue) throw new PolicyError(file, 1, "invalid policy file");
      if (issue.code === "unrecognized_keys") {
        const key = issue.keys[0] ?? "";
        const at = pathText(issue.path);
        throw new PolicyError(
          file,
          lineOf(nodeAt(root, issue.path, key), lc),
          `unknown key "${key}"${at ? ` in ${at}` : ""} (allowed: ${allowedKeysAt(issue.path).join(", ")})`,
        );
      }
      throw new PolicyError(
        file,
        lineOf(nodeAt(root, issue.path), lc),
        `${pathText(issue.path) || "policy"}: ${issue.message}`,
      );
    }
    parsed.data.rules.forEach((rule, i) => {
      const line = lineOf(nodeAt(root, ["rules", i]), lc);
      const first = seen.get(rule.id);
      if (first) {
        throw new PolicyError(
          file,
          lineOf(nodeAt(root, ["rules", i, "id"]), lc),
          `duplicate rule id "${rule.id}" (first defined at ${first.file}:${first.line})`,
        );
      }
      seen.set(rule.id, { file, line });
      let when: CompiledCondition | null = null;
      if (rule.when !== undefined) {
        const node = nodeAt(root, ["rules", i, "when"]);
        try {
          when = compileCondition(rule.when);
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          // Block literals keep the expression's lines; other scalar styles are reported where they start.
          const literal = node instanceof Scalar && node.type === Scalar.BLOCK_LITERAL;
          const at = lineOf(node, lc) + (literal ? err.exprLine : 0);
          throw new PolicyError(file, at, `when: ${err.message}`);
        }
      }
      const checks = compileMatch(rule.match ?? {}, rule.effect);
      const rest = checks
        .filter((c) => c.field !== "methods" && c.field !== "servers")
        .sort((a, b) => (COST[a.field] ?? 0) - (COST[b.field] ?? 0));
      const serverCheck = checks.find((c) => c.field === "servers");
      const methods = rule.match?.methods;
      rules.push({
        id: rule.id,
        file,
        line,
        effect: rule.effect,
        methods: methods && !methods.includes("*") ? new Set(methods) : null,
        serverTest: serverCheck ? (ev) => serverCheck.test(ev) : null,
        checks,
        rest,
        when,
        reviewTimeoutSeconds: rule.review?.timeoutSeconds ?? DEFAULT_REVIEW_TIMEOUT_SECONDS,
      });
    });
  }
  return new Policy(
    policyVersion(files),
    files.map((f) => f.path),
    rules,
  );
}

/** The policy files named by `paths`: files as given, directories' `*.yaml`/`*.yml` sorted (not recursive). */
export function listPolicyFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      throw new PolicyError(p, 1, `cannot read policy path: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const inDir = readdirSync(p)
      .filter((n) => n.endsWith(".yaml") || n.endsWith(".yml"))
      .sort()
      .map((n) => join(p, n));
    if (inDir.length === 0) throw new PolicyError(p, 1, "no *.yaml or *.yml policy files in this directory");
    out.push(...inDir);
  }
  return out;
}

/** Reads policy files and directories (see listPolicyFiles) and compiles them. */
export function loadPolicyFiles(paths: readonly string[]): CompiledPolicy {
  const files = listPolicyFiles(paths).map((path) => {
    try {
      return { path, text: readFileSync(path, "utf8") };
    } catch (err) {
      throw new PolicyError(
        path,
        1,
        `cannot read policy file: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  });
  return compilePolicy(files);
}
