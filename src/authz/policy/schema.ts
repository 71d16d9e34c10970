/** The policy file format (docs/policy.md), validated with zod; unknown keys are rejected. */

import { z } from "zod";
import type { AuthMethod, PrincipalKind } from "../../core/principal.js";

const AUTH_METHODS = [
  "api_key",
  "oauth",
  "task",
  "jwt_svid",
  "mtls",
  "anonymous",
] as const satisfies readonly AuthMethod[];
const PRINCIPAL_KINDS = [
  "service",
  "user",
  "workload",
  "anonymous",
] as const satisfies readonly PrincipalKind[];

const names = z.array(z.string().min(1)).min(1, "list at least one value or omit the field");

export const RuleMatch = z.strictObject({
  /** JSON-RPC methods; "*" = any. */
  methods: names.optional(),
  /** Globs on the server name. */
  servers: names.optional(),
  /** Globs on the tool or prompt name, or the resource URI. */
  tools: names.optional(),
  tiers: z
    .array(z.enum(["read", "write", "destructive"]))
    .min(1)
    .optional(),
  openWorld: z.boolean().optional(),
  authMethods: z.array(z.enum(AUTH_METHODS)).min(1).optional(),
  principalKinds: z.array(z.enum(PRINCIPAL_KINDS)).min(1).optional(),
  /** context.environment */
  environments: names.optional(),
  /** Any of the principal's groups. */
  groups: names.optional(),
  /**
   * SPIFFE IDs of workload principals (JWT-SVID, mTLS): exact IDs or path patterns, `*` one
   * path segment or part of one, `**` any number of segments; the trust domain is literal.
   */
  workloads: z
    .array(
      z
        .string()
        .regex(
          /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._*-]+)*$/,
          "a SPIFFE ID or path pattern: spiffe://<trust domain>/<segments>, * within a segment, ** across segments",
        ),
    )
    .min(1, "list at least one value or omit the field")
    .optional(),
});
export type RuleMatch = z.infer<typeof RuleMatch>;

export const Rule = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/, "ids are letters, digits and . _ : / - (at most 128)"),
    description: z.string().optional(),
    effect: z.enum(["allow", "deny", "review"]),
    match: RuleMatch.optional(),
    when: z.string().min(1).optional(),
    review: z.strictObject({ timeoutSeconds: z.number().int().min(1).max(86_400).optional() }).optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.review && rule.effect !== "review") {
      ctx.addIssue({ code: "custom", path: ["review"], message: "`review` applies only to effect: review" });
    }
  });
export type Rule = z.infer<typeof Rule>;

export const PolicyFile = z.strictObject({ rules: z.array(Rule) });

/** Allowed keys of the object at a path, for "unknown key" messages. */
export function allowedKeysAt(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(PolicyFile.shape);
  const last = path[path.length - 1];
  if (last === "match") return Object.keys(RuleMatch.shape);
  if (last === "review") return ["timeoutSeconds"];
  return ["id", "description", "effect", "match", "when", "review"];
}
