/**
 * One request to explain, from `portcullis policy explain` flags or the console's explain
 * form: the principal as `k=v,…`, arguments and annotations as JSON objects, each error
 * naming the flag.
 */
import type { z } from "zod";
import type { Config } from "../../config/schema.js";
import {
  type Case,
  CasePrincipal,
  CaseRequest,
  CaseTask,
  nameKeyFor,
  PolicyInputError,
} from "./caseFormat.js";
import { buildInput } from "./caseInput.js";
import type { PolicyInput } from "./types.js";

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

export const TASK_KEYS: Readonly<Record<string, keyof CaseTask>> = {
  id: "id",
  purpose: "purpose",
  remainingCalls: "remainingCalls",
  age: "ageSeconds",
  ageSeconds: "ageSeconds",
};

/** `id=t1,purpose=triage,remainingCalls=5,age=60` → the task of a task token (`--task`). */
export function parseTask(spec: string): CaseTask {
  const raw: Record<string, unknown> = {};
  for (const part of spec.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 1) throw new PolicyInputError(`--task: "${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    const field = TASK_KEYS[key];
    if (field === undefined) {
      throw new PolicyInputError(
        `--task: unknown key "${key}" (known: ${Object.keys(TASK_KEYS).join(", ")})`,
      );
    }
    if (field === "remainingCalls" && ["none", "null"].includes(value)) raw[field] = null;
    else if (field === "remainingCalls" || field === "ageSeconds") {
      if (!/^\d+$/.test(value))
        throw new PolicyInputError(`--task: ${key}=${value}: expected a whole number`);
      raw[field] = Number(value);
    } else raw[field] = value;
  }
  const parsed = CaseTask.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    throw new PolicyInputError(`--task: ${issue.path.map(String).join(".")}: ${issue.message}`);
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
  /** The task of a task token, `k=v,…` (parseTask). */
  task?: string;
  /** The RFC 8693 actor chain, outermost first, `|`-separated. */
  actor?: string;
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
    task: opts.task === undefined ? null : parseTask(opts.task),
    actor:
      opts.actor === undefined
        ? []
        : opts.actor
            .split("|")
            .map((a) => a.trim())
            .filter(Boolean),
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
  opts: Pick<ExplainOpts, "principal" | "server" | "method" | "tool" | "tier" | "openWorld" | "args">,
  config: Config,
  now: Date = new Date(),
): PolicyInput {
  return buildInput(explainCase(opts, config), config, now).input;
}
