/**
 * Decision tables and explain requests as policy inputs (`portcullis policy test|explain`,
 * the console's explain form): the cases file format (policies/default-cases.yaml; every
 * field but `expect` has a default), validated with file:line errors, and the PolicyInput
 * built the way the listener builds it (authorize.ts `resourceFacts`). A tool's tier comes
 * from, in order: the case or flag, the operator's pin in the config, annotations given with
 * the case, else "unknown": destructive and open-world, as the gateway treats a tool it has
 * not seen listed.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, relative } from "node:path";
import { LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "../../config/load.js";
import type { Config } from "../../config/schema.js";
import { lineOf, nodeAt } from "../../config/yamlLocation.js";
import { resourceFacts } from "../authorize.js";
import { riskTierOf, type TierPin } from "../riskTier.js";
import type { PolicyInput, ResourceFacts, RiskTier } from "./types.js";

/** A path as the operator reads it: relative to the working directory when under it. */
export function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

/** Bad operator input (a flag, an argument, a cases file); the message names it. Exits 2. */
export class PolicyInputError extends ConfigError {
  override name = "PolicyInputError";
}

// ---------------------------------------------------------------------------------------
// Decision table format (policies/default-cases.yaml). Every field but `expect` has a default.

export const AUTH_METHODS = ["api_key", "oauth", "anonymous"] as const;
export const PRINCIPAL_KINDS = ["service", "user", "workload", "anonymous"] as const;
export const TIERS = ["read", "write", "destructive"] as const;
export const EFFECTS = ["allow", "deny", "review"] as const;

export const DEFAULT_EXPIRES_IN_SECONDS = 86_400;
export const DEFAULT_PRINCIPAL_ID = "test-principal";

export const Names = z.array(z.string().min(1));
export const JsonObject = z.record(z.string(), z.unknown());

export const CasePrincipal = z
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
export type CasePrincipal = z.infer<typeof CasePrincipal>;

/** For asking resourceFacts what a method acts on. */
export const NO_TOOLS = {
  facts: () => ({ tier: "destructive" as const, openWorld: true, annotations: {} }),
};

/** Which name key a method's target takes. */
export function nameKeyFor(method: string): "tool" | "uri" | "prompt" | null {
  const kind = resourceFacts("", method, null, NO_TOOLS).kind;
  return kind === "tool" ? "tool" : kind === "resource" ? "uri" : kind === "prompt" ? "prompt" : null;
}

export const CaseRequest = z
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
export type CaseRequest = z.infer<typeof CaseRequest>;

export const CaseContext = z
  .strictObject({
    clientName: z.string().nullable().default(null),
    clientVersion: z.string().nullable().default(null),
    sourceAddress: z.string().nullable().default(null),
    protocolVersion: z.string().nullable().default(null),
  })
  .prefault({});

export const Case = z.strictObject({
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
export type Case = z.infer<typeof Case>;

export const CasesFile = z.strictObject({ cases: z.array(Case).min(1, "list at least one case") });

export const ALLOWED_KEYS: Readonly<Record<string, readonly string[]>> = {
  file: Object.keys(CasesFile.shape),
  case: Object.keys(Case.shape),
  principal: Object.keys(CasePrincipal.unwrap().shape),
  request: ["method", "server", "tool", "uri", "prompt", "tier", "openWorld", "annotations"],
  context: Object.keys(CaseContext.unwrap().shape),
};

// ---------------------------------------------------------------------------------------
// Building the policy input.

/** How a tool's tier was found, shown by explain and test. */
export type TierSource = "given" | "operator" | "annotations" | "unknown";

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
export function chooseRisk(r: CaseRequest, pin: TierPin | undefined): ToolRiskChoice {
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

export interface BuiltInput {
  input: PolicyInput;
  /** Tools only: where the tier came from. */
  risk: ToolRiskChoice | null;
}

export function buildInput(c: Case, config: Config, now: Date): BuiltInput {
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
// Cases files: YAML with line numbers, zod errors located at file:line.

export function caseLabel(index: number, name: string | undefined): string {
  return name === undefined ? `case #${index + 1}` : `case #${index + 1} "${name}"`;
}

export function issueText(issue: z.core.$ZodIssue, raw: unknown): string {
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

export function readCases(file: string): Case[] {
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

export const PRINCIPAL_KEYS: Readonly<Record<string, keyof CasePrincipal>> = {
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
export const LIST_KEYS = new Set<string>(["scopes", "groups"]);
export const NUMBER_KEYS = new Set<string>(["expiresInSeconds", "credentialAgeSeconds"]);

/** `method=oauth,kind=user,scopes=mcp|mcp:tools,groups=sre,expiresIn=3600` → a case principal. */
export function parsePrincipal(spec: string): CasePrincipal {
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

export const REQUEST_FLAGS: Readonly<Record<string, string>> = {
  method: "--method",
  server: "--server",
  tool: "--tool",
  uri: "--tool",
  prompt: "--tool",
  tier: "--tier",
  openWorld: "--open-world",
  annotations: "--annotations",
};

export function parseJsonObject(flag: string, text: string): Record<string, unknown> {
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

/** One request to explain (`portcullis policy explain` flags, the console's form). */
export interface ExplainOpts {
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
}

export function explainCase(opts: ExplainOpts, config: Config): Case {
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
