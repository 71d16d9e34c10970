/**
 * The audit record of one decision on an MCP request (allow, deny or review), built from the
 * facts the request pipeline established: who (the principal, or the credential id a refused
 * credential named), what (server, JSON-RPC method, target, arguments), the decision and its
 * precise reason, the policy decision's id and rules, and the latency so far. Every record
 * names the policy in force, also for refusals decided before policy ran. A task token's
 * records also name its task and actor (./taskDetail.ts), so `audit search --task` finds them.
 */
import type { Principal } from "../core/principal.js";
import type { AuditRecord } from "../store/types.js";
import { withTaskDetail } from "./taskDetail.js";

/** What a request's policy decision adds to its records. */
export interface PolicyFacts {
  decisionId: string;
  ruleIds: string[];
  version: string;
}

/** The parts of a classified JSON-RPC message a record names. */
export interface RecordedMessage {
  method: string | null;
  name: string | null;
  message: { params?: unknown };
}

/** The request facts a record is built from (src/pipeline/callState.ts provides them). */
export interface RequestFacts {
  readonly environment: string;
  readonly server: string;
  readonly principal: Principal | null;
  readonly msg: RecordedMessage | null;
  /** performance.now() when the request arrived. */
  readonly started: number;
  readonly policy: PolicyFacts | null;
}

export type RequestDecision = "allow" | "deny" | "review";

export function requestRecord(
  facts: RequestFacts,
  decision: RequestDecision,
  reason: string,
  detail: Record<string, unknown> | null,
  /** The policy version in force, for records decided before policy ran. */
  policyVersion: string,
  /** The credential a refused authentication named (no principal yet). */
  credentialId: string | null = null,
): AuditRecord {
  const { principal, msg, policy } = facts;
  const params = msg?.message.params;
  return {
    at: new Date(),
    environment: facts.environment,
    principal: principal?.id ?? null,
    method: principal?.method ?? null,
    credentialId: principal?.credentialId ?? credentialId,
    server: facts.server,
    rpcMethod: msg?.method ?? null,
    tool: msg?.name ?? null,
    decision,
    reason,
    latencyUs: Math.round((performance.now() - facts.started) * 1000),
    detail: principal === null ? detail : withTaskDetail(detail, principal),
    decisionId: policy?.decisionId ?? null,
    ruleIds: policy?.ruleIds ?? null,
    policyVersion: policy?.version ?? policyVersion,
    // Raw here; the writer redacts (secrets masked, large values hashed) when it writes.
    arguments:
      params !== null && typeof params === "object"
        ? (params as Record<string, unknown>).arguments
        : undefined,
  };
}
