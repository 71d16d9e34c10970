/**
 * The `approvals` table (migration 007, ./schema.ts): the row ↔ record mapping.
 * See src/review/ for what an approval binds and how it is decided and consumed.
 */
import type { ApprovalsTable } from "./schema.js";
import type { ApprovalChannel, ApprovalRecord, ApprovalStatus, NewApproval } from "./types.js";

const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function approvalToRow(a: NewApproval): ApprovalsTable {
  return {
    id: a.id,
    status: "pending",
    environment: a.environment,
    principal_id: a.principalId,
    principal_name: a.principalName,
    principal_method: a.principalMethod,
    credential_id: a.credentialId,
    server: a.server,
    rpc_method: a.rpcMethod,
    tool: a.tool,
    arguments_hash: a.argumentsHash,
    arguments_summary: JSON.stringify(a.argumentsSummary),
    decision_id: a.decisionId,
    rule_ids: JSON.stringify(a.ruleIds),
    policy_version: a.policyVersion,
    created_at: a.createdAt.getTime(),
    expires_at: a.expiresAt.getTime(),
    decided_at: null,
    decided_by: null,
    decided_via: null,
    reason: null,
    consumed_at: null,
  };
}

export function rowToApproval(r: ApprovalsTable): ApprovalRecord {
  return {
    id: r.id,
    status: r.status as ApprovalStatus,
    environment: r.environment,
    principalId: r.principal_id,
    principalName: r.principal_name,
    principalMethod: r.principal_method,
    credentialId: r.credential_id,
    server: r.server,
    rpcMethod: r.rpc_method,
    tool: r.tool,
    argumentsHash: r.arguments_hash,
    argumentsSummary: JSON.parse(r.arguments_summary) as Record<string, unknown>,
    decisionId: r.decision_id,
    ruleIds: JSON.parse(r.rule_ids) as string[],
    policyVersion: r.policy_version,
    createdAt: new Date(Number(r.created_at)),
    expiresAt: new Date(Number(r.expires_at)),
    decidedAt: dateOrNull(r.decided_at === null ? null : Number(r.decided_at)),
    decidedBy: r.decided_by,
    decidedVia: r.decided_via as ApprovalChannel | null,
    reason: r.reason,
    consumedAt: dateOrNull(r.consumed_at === null ? null : Number(r.consumed_at)),
  };
}
