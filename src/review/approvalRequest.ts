/**
 * Creating the approval a reviewed call waits for: bound to the exact call (./binding.ts:
 * server, method, target, arguments hash), bounded per caller (`review.maxPendingPerCaller`,
 * refused 429 past it), stored before anything is announced (fail closed), audited, and
 * announced by webhook with signed approve/deny links (./signedLinks.ts).
 */
import { type GatewayError, tooManyRequests } from "../core/errors.js";
import type { ApprovalRecord, NewApproval } from "../store/types.js";
import { summarizeArguments } from "./argumentsSummary.js";
import { argumentsHash, callArguments, newApprovalId } from "./binding.js";
import type { HeldCall, ReviewContext } from "./reviewCall.js";

export interface ApprovalRequestContext extends Pick<ReviewContext, "store" | "config"> {
  environment: string;
  /** Tells approvers (the webhook); must not throw. */
  announce(approval: ApprovalRecord): void;
}

/** A new pending approval, or the 429 to answer when the caller has too many pending. */
export async function requestApproval(
  ctx: ApprovalRequestContext,
  call: HeldCall,
): Promise<ApprovalRecord | GatewayError> {
  const { principal, msg, decision } = call;
  const args = callArguments(msg);
  const now = new Date();
  // Each approval is a row, a webhook and an approver's attention: bounded per caller.
  const cap = ctx.config.maxPendingPerCaller;
  const pending = await ctx.store.pendingApprovalsOf(principal.id, now);
  if (pending.count >= cap) {
    const retryAfter = ((pending.nextExpiry?.getTime() ?? now.getTime()) - now.getTime()) / 1000;
    const reason = `caller already has ${pending.count} pending approvals (review.maxPendingPerCaller ${cap})`;
    call.audit("deny", `review refused: ${reason}`, { event: "review.limit", pending: pending.count });
    return tooManyRequests("pending_approvals", retryAfter, reason).withId(msg.id);
  }
  const timeout = decision.reviewTimeoutSeconds ?? ctx.config.defaultTimeoutSeconds;
  const fresh: NewApproval = {
    id: newApprovalId(),
    environment: ctx.environment,
    principalId: principal.id,
    principalName: principal.name,
    principalMethod: principal.method,
    credentialId: principal.credentialId,
    server: call.server,
    rpcMethod: msg.method as string,
    tool: msg.name ?? "",
    argumentsHash: argumentsHash(args),
    argumentsSummary: summarizeArguments(args),
    decisionId: call.decisionId,
    ruleIds: decision.ruleIds,
    policyVersion: decision.policyVersion,
    createdAt: now,
    expiresAt: new Date(now.getTime() + timeout * 1000),
  };
  try {
    await ctx.store.insertApproval(fresh);
  } catch (err) {
    call.audit("deny", "review requested but the approval could not be stored: failing closed", {});
    throw err;
  }
  const approval: ApprovalRecord = {
    ...fresh,
    status: "pending",
    decidedAt: null,
    decidedBy: null,
    decidedVia: null,
    reason: null,
    consumedAt: null,
  };
  call.audit(
    "review",
    `review requested: approval ${approval.id}, waiting up to ${timeout}s (${decision.reason})`,
    {
      event: "review.requested",
      approvalId: approval.id,
      argumentsHash: approval.argumentsHash,
      expiresAt: approval.expiresAt.toISOString(),
    },
  );
  ctx.announce(approval);
  return approval;
}
