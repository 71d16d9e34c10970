/**
 * The decision-table format of `portcullis policy test` (policies/default-cases.yaml): one
 * case per request, every field but `expect` with a default, unknown keys refused. Also the
 * principal and request of `portcullis policy explain` (./explainRequest.ts).
 */
import { z } from "zod";
import { ConfigError } from "../../config/load.js";
import { resourceFacts } from "../authorize.js";

/** Bad operator input (a flag, an argument, a cases file); the message names it. Exits 2. */
export class PolicyInputError extends ConfigError {
  override name = "PolicyInputError";
}

export const AUTH_METHODS = ["api_key", "oauth", "task", "jwt_svid", "mtls", "anonymous"] as const;
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
    /** Default: service (anonymous for method anonymous, workload for jwt_svid and mtls). */
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

/**
 * Not an MCP method: what the task service asks the policy for each tool a task would be
 * granted (src/tasks/mintPolicy.ts), about the tool as `tools/call` sees it (its tier).
 */
export const TASKS_MINT = "tasks/mint";

/** The method whose target facts a case's method reads: `tasks/mint` names a tool. */
export function targetMethod(method: string): string {
  return method === TASKS_MINT ? "tools/call" : method;
}

/** Which name key a method's target takes. */
export function nameKeyFor(method: string): "tool" | "uri" | "prompt" | null {
  const kind = resourceFacts("", targetMethod(method), null, NO_TOOLS).kind;
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

/** The task of a task token (method `task`); the variables `task.*`. */
export const CaseTask = z.strictObject({
  id: z.string().min(1).default("test-task"),
  purpose: z.string().default(""),
  /** null: no call budget. */
  remainingCalls: z.number().int().min(0).nullable().default(null),
  ageSeconds: z.number().int().min(0).default(0),
});
export type CaseTask = z.infer<typeof CaseTask>;

export const Case = z.strictObject({
  name: z.string().min(1).optional(),
  /** The gateway's environment (context.environment), also the principal's. */
  environment: z.string().min(1).default("dev"),
  principal: CasePrincipal,
  /** The task a task token is bound to (`task.*`); default none. */
  task: CaseTask.nullable().default(null),
  /** The RFC 8693 actor chain, outermost (current) actor first (`actor.*`); default none. */
  actor: Names.default([]),
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
  task: Object.keys(CaseTask.shape),
  request: ["method", "server", "tool", "uri", "prompt", "tier", "openWorld", "annotations"],
  context: Object.keys(CaseContext.unwrap().shape),
};
