/**
 * `portcullis policy check|test|explain|decision`: policy-as-code for operators
 * (docs/policy.md).
 *
 * - `check` compiles policy files the way the gateway does at start and on reload;
 * - `test` runs a decision table (a YAML file of cases: principal, request, arguments →
 *   expected decision) and exits 1 on a mismatch, for the operator's CI;
 * - `explain` decides one request and shows every rule with file:line, matched or not and why;
 * - `decision` finds the audit record of a decision id a refused client was given.
 *
 * Inputs are built the way the listener builds them (authz/authorize.ts `resourceFacts`),
 * and a tool's tier comes from, in order: the case or flag, the operator's pin in the
 * config, annotations given with the case or flag, else "unknown": destructive and
 * open-world, as the gateway treats a tool it has not seen listed.
 *
 * Exit codes: 0 done (all cases pass); 1 a case did not get its expected decision; 2 a
 * policy that does not compile (`file:line: message`), a bad cases file or a bad flag.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { type Command, Option } from "commander";
import { LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import { resourceFacts } from "../authz/authorize.js";
import { loadPolicyFiles } from "../authz/policy/compile.js";
import { configuredPolicyPaths } from "../authz/policy/defaultPack.js";
import {
  type CompiledPolicy,
  type PolicyDecision,
  PolicyError,
  type PolicyInput,
  type ResourceFacts,
  type RiskTier,
  type RuleTrace,
} from "../authz/policy/types.js";
import { riskTierOf, type TierPin } from "../authz/riskTier.js";
import { ConfigError, type LoadedConfig, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { lineOf, nodeAt } from "../config/yamlLocation.js";
import type { Store, StoredAuditRecord } from "../store/types.js";

export interface PolicyCliDeps {
  withStoreOptions(cmd: Command): Command;
  withStore<T>(opts: object, fn: (store: Store, loaded: { config: Config }) => Promise<T>): Promise<T>;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
}

/** Bad operator input (a flag, an argument, a cases file); the message names it. Exits 2. */
export class PolicyInputError extends ConfigError {
  override name = "PolicyInputError";
}

interface ConfigOpts {
  config?: string;
  dataDir?: string;
  store?: string;
  json?: boolean;
}

// ---------------------------------------------------------------------------------------
// Decision table format (policies/default-cases.yaml). Every field but `expect` has a default.

const AUTH_METHODS = ["api_key", "oauth", "anonymous"] as const;
const PRINCIPAL_KINDS = ["service", "user", "workload", "anonymous"] as const;
const TIERS = ["read", "write", "destructive"] as const;
const EFFECTS = ["allow", "deny", "review"] as const;

const DEFAULT_EXPIRES_IN_SECONDS = 86_400;
const DEFAULT_PRINCIPAL_ID = "test-principal";

const Names = z.array(z.string().min(1));
const JsonObject = z.record(z.string(), z.unknown());

const CasePrincipal = z
  .strictObject({
    id: z.string().min(1).default(DEFAULT_PRINCIPAL_ID),
    method: z.enum(AUTH_METHODS).default("api_key"),
    /** Default: service (anonymous for method anonymous). */
    kind: z.enum(PRINCIPAL_KINDS).optional(),
    scopes: Names.default([]),
    groups: Names.default([]),
    tenant: z.string().min(1).nullable().default(null),
    credentialId: z.string().min(1).nullable().default(null),
    /** null: the credential never expires. */
    expiresInSeconds: z.number().int().nullable().default(DEFAULT_EXPIRES_IN_SECONDS),
    /** null: unknown. */
    credentialAgeSeconds: z.number().int().min(0).nullable().default(0),
  })
  .prefault({});
type CasePrincipal = z.infer<typeof CasePrincipal>;

/** For asking resourceFacts what a method acts on. */
const NO_TOOLS = {
  facts: () => ({ tier: "destructive" as const, openWorld: true, annotations: {} }),
};

/** Which name key a method's target takes. */
function nameKeyFor(method: string): "tool" | "uri" | "prompt" | null {
  const kind = resourceFacts("", method, null, NO_TOOLS).kind;
  return kind === "tool" ? "tool" : kind === "resource" ? "uri" : kind === "prompt" ? "prompt" : null;
}

const CaseRequest = z
  .strictObject({
    method: z.string().min(1).default("tools/call"),
    server: z.string().min(1).default("demo"),
    tool: z.string().min(1).optional(),
    uri: z.string().min(1).optional(),
    prompt: z.string().min(1).optional(),
    tier: z.enum(TIERS).optional(),
    openWorld: z.boolean().optional(),
    annotations: JsonObject.optional(),
  })
  .superRefine((r, ctx) => {
    const want = nameKeyFor(r.method);
    for (const key of ["tool", "uri", "prompt"] as const) {
      if (r[key] !== undefined && key !== want) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: want
            ? `${r.method} names its target with \`${want}\`, not \`${key}\``
            : `${r.method} has no target; remove \`${key}\``,
        });
      }
    }
    if (want !== "tool") {
      for (const key of ["tier", "openWorld", "annotations"] as const) {
        if (r[key] !== undefined) {
          ctx.addIssue({ code: "custom", path: [key], message: `\`${key}\` applies to tools/call only` });
        }
      }
    }
  })
  .prefault({});
type CaseRequest = z.infer<typeof CaseRequest>;

const CaseContext = z
  .strictObject({
    clientName: z.string().nullable().default(null),
    clientVersion: z.string().nullable().default(null),
    sourceAddress: z.string().nullable().default(null),
    protocolVersion: z.string().nullable().default(null),
  })
  .prefault({});

const Case = z.strictObject({
  name: z.string().min(1).optional(),
  /** The gateway's environment (context.environment), also the principal's. */
  environment: z.string().min(1).default("dev"),
  principal: CasePrincipal,
  request: CaseRequest,
  arguments: JsonObject.default({}),
  /** ISO 8601 with an offset, e.g. 2025-06-01T09:00:00Z; default: now. */
  time: z.iso.datetime({ offset: true }).optional(),
  context: CaseContext,
  expect: z.enum(EFFECTS),
  /** When given: exactly the ids of the rules that decided (any order). */
  rules: Names.optional(),
});
type Case = z.infer<typeof Case>;

const CasesFile = z.strictObject({ cases: z.array(Case).min(1, "list at least one case") });

const ALLOWED_KEYS: Readonly<Record<string, readonly string[]>> = {
  file: Object.keys(CasesFile.shape),
  case: Object.keys(Case.shape),
  principal: Object.keys(CasePrincipal.unwrap().shape),
  request: ["method", "server", "tool", "uri", "prompt", "tier", "openWorld", "annotations"],
  context: Object.keys(CaseContext.unwrap().shape),
};

// ---------------------------------------------------------------------------------------
// Building the policy input.

/** How a tool's tier was found, shown by explain and test. */
type TierSource = "given" | "operator" | "annotations" | "unknown";

interface ToolRiskChoice {
  tier: RiskTier;
  openWorld: boolean;
  source: TierSource;
}

function operatorPin(config: Config, server: string, tool: string): TierPin | undefined {
  const tools: Readonly<Record<string, TierPin>> | undefined = config.servers[server]?.tools;
  return tools !== undefined && Object.hasOwn(tools, tool) ? tools[tool] : undefined;
}

/**
 * The tier: given > operator pin > annotations > unknown (destructive). Open-world: given >
 * pin > annotations (missing hint = open) > false when the tier was given (the caller
 * described the tool), true otherwise (the gateway's stricter assumption).
 */
function chooseRisk(r: CaseRequest, pin: TierPin | undefined): ToolRiskChoice {
  if (r.tier !== undefined) {
    const fromAnnotations = r.annotations === undefined ? undefined : riskTierOf(r.annotations).openWorld;
    return {
      tier: r.tier,
      openWorld: r.openWorld ?? pin?.openWorld ?? fromAnnotations ?? false,
      source: "given",
    };
  }
  if (pin !== undefined || r.annotations !== undefined) {
    const risk = riskTierOf(r.annotations ?? {}, pin);
    return { tier: risk.tier, openWorld: r.openWorld ?? risk.openWorld, source: risk.source };
  }
  return { tier: "destructive", openWorld: r.openWorld ?? true, source: "unknown" };
}

interface BuiltInput {
  input: PolicyInput;
  /** Tools only: where the tier came from. */
  risk: ToolRiskChoice | null;
}

function buildInput(c: Case, config: Config, now: Date): BuiltInput {
  const r = c.request;
  const name = r.tool ?? r.uri ?? r.prompt ?? null;
  let risk: ToolRiskChoice | null = null;
  const resource: ResourceFacts = resourceFacts(r.server, r.method, name, {
    facts: (server, tool) => {
      risk = chooseRisk(r, operatorPin(config, server, tool));
      return { tier: risk.tier, openWorld: risk.openWorld, annotations: r.annotations ?? {} };
    },
  });
  const p = c.principal;
  return {
    input: {
      principal: {
        id: p.id,
        kind: p.kind ?? (p.method === "anonymous" ? "anonymous" : "service"),
        method: p.method,
        groups: p.groups,
        scopes: p.scopes,
        tenant: p.tenant,
        environment: c.environment,
        credentialId: p.credentialId,
        credentialAgeSeconds: p.credentialAgeSeconds,
        expiresInSeconds: p.expiresInSeconds,
      },
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

// ---------------------------------------------------------------------------------------
// Loading.

function loadConfigFor(opts: ConfigOpts): LoadedConfig {
  return loadConfig({ config: opts.config, dataDir: opts.dataDir, store: opts.store });
}

interface LoadedPolicy {
  policy: CompiledPolicy;
  /** What was compiled: "arguments" (paths given), "config" (policy.paths) or "default pack". */
  from: string;
}

function loadPolicy(explicit: readonly string[] | undefined, loaded: LoadedConfig): LoadedPolicy {
  if (explicit !== undefined && explicit.length > 0) {
    return { policy: loadPolicyFiles(explicit.map((p) => resolve(p))), from: "arguments" };
  }
  const paths = configuredPolicyPaths(loaded.config.policy.paths, loaded.source);
  const from = loaded.config.policy.paths === undefined ? "default pack" : `policy.paths in ${loaded.source}`;
  return { policy: loadPolicyFiles(paths), from };
}

/** A path as the operator reads it: relative to the working directory when under it. */
function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

function policyView(p: LoadedPolicy): Record<string, unknown> {
  return {
    version: p.policy.version,
    ruleCount: p.policy.ruleCount,
    files: [...p.policy.sources],
    from: p.from,
  };
}

/**
 * Runs a command; a policy that does not compile is reported as `file:line: message` and
 * exits 2 (with --json, also `{"error":"policy","message","file","line"}` on stdout).
 */
async function reportingPolicyErrors(json: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    const message = `${shown(err.file)}:${err.line}: ${err.detail}`;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ error: "policy", message, file: err.file, line: err.line, detail: err.detail })}\n`,
      );
    }
    process.stderr.write(`portcullis: ${message}\n`);
    process.exitCode = 2;
  }
}

// ---------------------------------------------------------------------------------------
// Cases files: YAML with line numbers, zod errors located at file:line.

function caseLabel(index: number, name: string | undefined): string {
  return name === undefined ? `case #${index + 1}` : `case #${index + 1} "${name}"`;
}

function issueText(issue: z.core.$ZodIssue, raw: unknown): string {
  const [top, index, ...rest] = issue.path;
  let where = "";
  let within = issue.path;
  if (top === "cases" && typeof index === "number") {
    const rawCase = (raw as { cases?: unknown[] }).cases?.[index] as { name?: unknown } | undefined;
    where = `${caseLabel(index, typeof rawCase?.name === "string" ? rawCase.name : undefined)}: `;
    within = rest;
  }
  const field = within.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const section = within.length === 0 ? (where ? "case" : "file") : String(within[within.length - 1]);
    const allowed = ALLOWED_KEYS[section];
    const at = field ? ` in ${field}` : "";
    return `${where}unknown key "${issue.keys[0]}"${at}${allowed ? ` (allowed: ${allowed.join(", ")})` : ""}`;
  }
  return `${where}${field || "cases file"}: ${issue.message}`;
}

function readCases(file: string): Case[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PolicyInputError(
      `<cases> ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lc.linePos(yamlError.pos[0]).line;
    throw new PolicyInputError(`${shown(file)}:${line}: invalid YAML: ${yamlError.message.split("\n")[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = CasesFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const key = issue.code === "unrecognized_keys" ? issue.keys[0] : undefined;
    const line = lineOf(nodeAt(doc.contents as Node | null, issue.path, key), lc);
    throw new PolicyInputError(`${shown(file)}:${line}: ${issueText(issue, raw)}`);
  }
  return parsed.data.cases;
}

// ---------------------------------------------------------------------------------------
// Flags of `explain`.

const PRINCIPAL_KEYS: Readonly<Record<string, keyof CasePrincipal>> = {
  id: "id",
  method: "method",
  kind: "kind",
  scopes: "scopes",
  groups: "groups",
  tenant: "tenant",
  credentialId: "credentialId",
  expiresIn: "expiresInSeconds",
  expiresInSeconds: "expiresInSeconds",
  age: "credentialAgeSeconds",
  credentialAgeSeconds: "credentialAgeSeconds",
};
const LIST_KEYS = new Set<string>(["scopes", "groups"]);
const NUMBER_KEYS = new Set<string>(["expiresInSeconds", "credentialAgeSeconds"]);

/** `method=oauth,kind=user,scopes=mcp|mcp:tools,groups=sre,expiresIn=3600` → a case principal. */
function parsePrincipal(spec: string): CasePrincipal {
  const raw: Record<string, unknown> = {};
  for (const part of spec.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 1) throw new PolicyInputError(`--principal: "${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    const field = PRINCIPAL_KEYS[key];
    if (field === undefined) {
      throw new PolicyInputError(
        `--principal: unknown key "${key}" (known: ${Object.keys(PRINCIPAL_KEYS).join(", ")})`,
      );
    }
    if (LIST_KEYS.has(field)) {
      raw[field] = value === "" ? [] : value.split("|").map((v) => v.trim());
    } else if (NUMBER_KEYS.has(field)) {
      if (["never", "none", "null"].includes(value)) raw[field] = null;
      else if (/^-?\d+$/.test(value)) raw[field] = Number(value);
      else throw new PolicyInputError(`--principal: ${key}=${value}: expected whole seconds or "never"`);
    } else raw[field] = value;
  }
  const parsed = CasePrincipal.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    throw new PolicyInputError(`--principal: ${issue.path.map(String).join(".")}: ${issue.message}`);
  }
  return parsed.data;
}

const REQUEST_FLAGS: Readonly<Record<string, string>> = {
  method: "--method",
  server: "--server",
  tool: "--tool",
  uri: "--tool",
  prompt: "--tool",
  tier: "--tier",
  openWorld: "--open-world",
  annotations: "--annotations",
};

function parseJsonObject(flag: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PolicyInputError(`${flag}: not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new PolicyInputError(`${flag}: expected a JSON object, e.g. '{"path": "/tmp/x"}'`);
  }
  return value as Record<string, unknown>;
}

interface ExplainOpts extends ConfigOpts {
  principal: string;
  server: string;
  tool?: string;
  method: string;
  tier?: string;
  openWorld?: boolean;
  annotations?: string;
  args?: string;
  env?: string;
  time?: string;
  policy?: string[];
}

function explainCase(opts: ExplainOpts, config: Config): Case {
  const method = opts.method;
  const nameKey = nameKeyFor(method);
  if (nameKey !== null && opts.tool === undefined) {
    throw new PolicyInputError(`--tool: required for ${method} (the tool, prompt or resource URI)`);
  }
  if (nameKey === null && opts.tool !== undefined) {
    throw new PolicyInputError(`--tool: ${method} acts on the whole server; remove --tool`);
  }
  const rawRequest: Record<string, unknown> = { method, server: opts.server };
  if (nameKey !== null) rawRequest[nameKey] = opts.tool;
  if (opts.tier !== undefined) rawRequest.tier = opts.tier;
  if (opts.openWorld !== undefined) rawRequest.openWorld = opts.openWorld;
  if (opts.annotations !== undefined)
    rawRequest.annotations = parseJsonObject("--annotations", opts.annotations);
  const request = CaseRequest.safeParse(rawRequest);
  if (!request.success) {
    const issue = request.error.issues[0] as z.core.$ZodIssue;
    const field = String(issue.path[0] ?? "");
    throw new PolicyInputError(`${REQUEST_FLAGS[field] ?? field}: ${issue.message}`);
  }
  if (opts.time !== undefined && Number.isNaN(Date.parse(opts.time))) {
    throw new PolicyInputError(`--time: "${opts.time}" is not an ISO 8601 date`);
  }
  return {
    environment: opts.env ?? config.environment,
    principal: parsePrincipal(opts.principal),
    request: request.data,
    arguments: opts.args === undefined ? {} : parseJsonObject("--args", opts.args),
    ...(opts.time !== undefined ? { time: new Date(opts.time).toISOString() } : {}),
    context: { clientName: null, clientVersion: null, sourceAddress: null, protocolVersion: null },
    expect: "allow",
  };
}

// ---------------------------------------------------------------------------------------
// Output.

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  const sa = [...new Set(a)].sort();
  const sb = [...new Set(b)].sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

function ids(list: readonly string[]): string {
  return list.length === 0 ? "none" : list.join(", ");
}

const TIER_SOURCE: Readonly<Record<TierSource, string>> = {
  given: "given",
  operator: "operator pin in the config",
  annotations: "from the annotations given",
  unknown: "unknown: no tier given or pinned, so destructive and open-world, as in the gateway",
};

function describeRequest(input: PolicyInput, risk: ToolRiskChoice | null): string {
  const r = input.resource;
  const target = r.name === null ? r.server : `${r.server} ${r.kind} ${r.name}`;
  const tool = risk ? `; tier ${risk.tier} (${TIER_SOURCE[risk.source]}), open-world ${risk.openWorld}` : "";
  return `${input.action.method} on ${target}${tool}`;
}

function describePrincipal(input: PolicyInput): string {
  const p = input.principal;
  const list = (xs: readonly string[]) => (xs.length === 0 ? "-" : xs.join(" "));
  const expiry = p.expiresInSeconds === null ? "never expires" : `expires in ${p.expiresInSeconds}s`;
  return `${p.method} ${p.kind} "${p.id}"; scopes ${list(p.scopes)}; groups ${list(p.groups)}; ${expiry}`;
}

function traceLines(trace: readonly RuleTrace[]): string {
  const rows = trace.map((t) => [
    t.matched ? "MATCH" : "no",
    t.effect,
    t.id,
    `${shown(t.file)}:${t.line}`,
    t.why,
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i < 4 ? cell.padEnd(widths[i] as number) : cell))
        .join("  ")
        .trimEnd(),
    )
    .map((l) => `  ${l}`)
    .join("\n");
}

function decisionLine(d: PolicyDecision): string {
  const review = d.reviewTimeoutSeconds === undefined ? "" : ` (review within ${d.reviewTimeoutSeconds}s)`;
  return `${d.effect.toUpperCase()}: ${d.reason}${review}`;
}

function auditView(r: StoredAuditRecord): Record<string, unknown> {
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

function humanAudit(v: Record<string, unknown>): string {
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

// ---------------------------------------------------------------------------------------
// Commands.

const DECISION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function registerPolicyCommands(program: Command, deps: PolicyCliDeps): void {
  const policy = program
    .command("policy")
    .description("policy-as-code: compile, test and explain policies; look up a decision")
    // A missing or invalid flag is a usage error like any other: exit 2 (0 for --help).
    .exitOverride((err) => {
      if (err.exitCode === 0) process.exit(0);
      if (process.argv.includes("--json")) {
        process.stdout.write(`${JSON.stringify({ error: "usage", message: err.message })}\n`);
      }
      process.exit(2);
    });

  deps
    .withStoreOptions(policy.command("check"))
    .description("compile policy files (default: the config's policy.paths, else the default pack)")
    .argument("[paths...]", "policy files or directories of *.yaml")
    .option("--json", "print one JSON object")
    .action(async (paths: string[], opts: ConfigOpts) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadPolicy(paths, loadConfigFor(opts));
        const view = { ok: true, ...policyView(loaded) };
        deps.print(opts.json, view, () =>
          [
            `policy ${loaded.policy.version}: ${loaded.policy.ruleCount} rules in ${loaded.policy.sources.length} files (${loaded.from}), all compile`,
            ...loaded.policy.sources.map((f) => `  ${shown(f)}`),
          ].join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(policy.command("test"))
    .description("run a decision table; exits 1 when a case does not get its expected decision")
    .argument("<cases>", "YAML file of cases (see policies/default-cases.yaml)")
    .option(
      "--policy <paths...>",
      "policy files or directories (default: the config's, else the default pack)",
    )
    .option("--json", "print one JSON object")
    .action(async (casesFile: string, opts: ConfigOpts & { policy?: string[] }) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadConfigFor(opts);
        const cases = readCases(casesFile);
        const lp = loadPolicy(opts.policy, loaded);
        const now = new Date();
        const results = cases.map((c, index) => {
          const { input, risk } = buildInput(c, loaded.config, now);
          const d = lp.policy.decide(input);
          const effectOk = d.effect === c.expect;
          const rulesOk = c.rules === undefined || sameIds(c.rules, d.ruleIds);
          return {
            index: index + 1,
            name: c.name ?? null,
            pass: effectOk && rulesOk,
            expect: c.expect,
            ...(c.rules !== undefined ? { expectRules: c.rules } : {}),
            effect: d.effect,
            ruleIds: d.ruleIds,
            reason: d.reason,
            ...(risk ? { tier: risk.tier, openWorld: risk.openWorld, tierSource: risk.source } : {}),
          };
        });
        const failed = results.filter((r) => !r.pass).length;
        const view = {
          ok: failed === 0,
          passed: results.length - failed,
          failed,
          policy: policyView(lp),
          cases: results,
        };
        deps.print(opts.json, view, () => {
          const lines = results.map((r) => {
            const label = r.name ?? `case #${r.index}`;
            if (r.pass) return `PASS  ${label}: ${r.effect} (rules: ${ids(r.ruleIds)})`;
            const wanted =
              r.effect !== r.expect
                ? `expected ${r.expect}, got ${r.effect}`
                : `expected rules ${ids(r.expectRules ?? [])}, got ${ids(r.ruleIds)}`;
            return `FAIL  ${label} (#${r.index}): ${wanted}\n        rules: ${ids(r.ruleIds)}; reason: ${r.reason}`;
          });
          lines.push(
            "",
            `${view.passed} passed, ${failed} failed (${results.length} cases; policy ${lp.policy.version}, ${lp.policy.ruleCount} rules, ${lp.from})`,
          );
          return lines.join("\n");
        });
        if (failed > 0) process.exitCode = 1;
      });
    });

  deps
    .withStoreOptions(policy.command("explain"))
    .description("decide one request and show every rule: file:line, matched or not, and why")
    .requiredOption(
      "--principal <k=v,...>",
      "the caller, e.g. method=api_key,kind=service or method=oauth,kind=user,scopes=mcp|mcp:tools,groups=sre,expiresIn=3600",
    )
    .requiredOption("--server <name>", "the server name (as in /mcp/<name>)")
    .option("--tool <name>", "the tool (or prompt name, or resource URI for resources/*)")
    .option("--method <method>", "the JSON-RPC method", "tools/call")
    .addOption(
      new Option(
        "--tier <tier>",
        "the tool's risk tier (default: the config's pin, else unknown = destructive)",
      ).choices(TIERS),
    )
    .option("--open-world", "the tool reaches outside systems (openWorldHint)")
    .option("--no-open-world", "the tool does not reach outside systems")
    .option("--annotations <json>", "the tool's annotations, to derive the tier the way the gateway does")
    .option("--args <json>", "the call's arguments, a JSON object")
    .option("--env <name>", "the gateway's environment (default: the config's)")
    .option("--time <iso>", "the time of the request (default: now)")
    .option(
      "--policy <paths...>",
      "policy files or directories (default: the config's, else the default pack)",
    )
    .option("--json", "print one JSON object")
    .action(async (opts: ExplainOpts) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadConfigFor(opts);
        const c = explainCase(opts, loaded.config);
        const lp = loadPolicy(opts.policy, loaded);
        const { input, risk } = buildInput(c, loaded.config, new Date());
        const { decision, trace } = lp.policy.explain(input);
        const view = {
          decision,
          input: {
            principal: input.principal,
            action: input.action,
            resource: { ...input.resource, ...(risk ? { tierSource: risk.source } : {}) },
            context: { ...input.context, time: input.context.time.toISOString() },
          },
          policy: policyView(lp),
          rules: trace,
        };
        deps.print(opts.json, view, () =>
          [
            `decision    ${decisionLine(decision)}`,
            `principal   ${describePrincipal(input)}`,
            `request     ${describeRequest(input, risk)}`,
            `arguments   ${JSON.stringify(input.context.arguments)}`,
            `environment ${input.context.environment}`,
            `policy      ${lp.policy.version} (${lp.policy.ruleCount} rules, ${lp.from})`,
            "",
            "rules (file order; deny overrides review, review overrides allow, no match = deny):",
            traceLines(trace),
          ].join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(policy.command("decision"))
    .description("show the audit record of a decision id a refused client was given")
    .argument("<decision-id>", 'the id in the client\'s error, e.g. "Forbidden by policy (decision 3kS9…)"')
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: ConfigOpts) => {
      if (!DECISION_ID.test(id)) {
        throw new PolicyInputError(
          `<decision-id> "${id}": expected the id from the error, letters, digits, - and _`,
        );
      }
      await deps.withStore(opts, async (store) => {
        const [record] = await store.listAudit({ decisionId: id, limit: 1 });
        if (record === undefined) {
          throw new PolicyInputError(
            `<decision-id> ${id}: no audit record with this decision id in this store (check --config / --store)`,
          );
        }
        const view = auditView(record);
        deps.print(opts.json, view, () => humanAudit(view));
      });
    });
}

/**
 * The policy input `portcullis policy explain` would build (principal as `k=v,…`, arguments
 * as JSON), for the console's explain form. Throws PolicyInputError naming the field.
 */
export function explainInput(
  opts: {
    principal: string;
    server: string;
    method: string;
    tool?: string;
    tier?: string;
    openWorld?: boolean;
    args?: string;
  },
  config: Config,
  now: Date = new Date(),
): PolicyInput {
  return buildInput(explainCase(opts as ExplainOpts, config), config, now).input;
}
