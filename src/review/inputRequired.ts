/**
 * Review for MCP 2026-07-28 (basic/patterns/mrtr): the call is answered at once with an
 * `input_required` result whose `requestState` (./requestState.ts) names the approval; a retry
 * carrying it is checked against the caller and the exact call, waits a little for a decision
 * (`review.retryHoldSeconds`), then is forwarded once approved (the approval consumed),
 * refused once denied or expired, or told "still pending" again.
 */
import { GatewayError, RpcCode } from "../core/errors.js";
import type { ApprovalRecord } from "../store/types.js";
import { expireApproval, refusal, refuseCall, settleApproval } from "./approvalConsumption.js";
import { argumentsHash, callArguments } from "./binding.js";
import { APPROVED_USE_WINDOW_SECONDS } from "./decide.js";
import { decodeRequestState, encodeRequestState } from "./requestState.js";
import { type HeldCall, REVIEW_META_KEY, type ReviewContext, type ReviewOutcome } from "./reviewCall.js";

export interface InputRequiredContext extends ReviewContext {
  /** The key the requestState is MACed with (./keys.ts "request-state"). */
  stateKey: Buffer;
}

function pendingMessage(a: ApprovalRecord): string {
  return (
    `This call needs a human approver's decision (approval ${a.id}, until ${a.expiresAt.toISOString()}). ` +
    `An approver other than you decides in the Portcullis console, with \`portcullis approvals approve ${a.id}\`, ` +
    "or from the review notification. Retry this same request with the requestState to continue."
  );
}

/** Answers the call with `input_required`, its requestState naming approval `a`. */
export function inputRequired(ctx: InputRequiredContext, call: HeldCall, a: ApprovalRecord): ReviewOutcome {
  const state = encodeRequestState(ctx.stateKey, {
    a: a.id,
    p: a.principalId,
    s: a.server,
    m: a.rpcMethod,
    t: a.tool,
    h: a.argumentsHash,
    e: Math.floor(a.expiresAt.getTime() / 1000) + APPROVED_USE_WINDOW_SECONDS,
  });
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: call.msg.id,
    result: {
      resultType: "input_required",
      requestState: state,
      _meta: {
        [REVIEW_META_KEY]: {
          approvalId: a.id,
          decisionId: call.decisionId,
          status: "pending",
          expiresAt: a.expiresAt.toISOString(),
          message: pendingMessage(a),
        },
      },
    },
  });
  call.res.writeHead(200, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  });
  call.res.end(body);
  return { kind: "replied", label: "review_pending" };
}

/** A retry presenting the gateway's requestState `presented`. */
export async function retryWithRequestState(
  ctx: InputRequiredContext,
  call: HeldCall,
  presented: string,
): Promise<ReviewOutcome> {
  const claims = decodeRequestState(ctx.stateKey, presented);
  const event = { event: "review.retry_refused" };
  if (claims === null) {
    return refuseCall(
      call,
      "requestState failed verification (not issued by this gateway, or altered)",
      new GatewayError(
        400,
        RpcCode.InvalidParams,
        "Invalid requestState",
        "requestState failed verification",
      ),
      event,
    );
  }
  const approvalId = claims.a;
  const data = { approvalId };
  if (claims.p !== call.principal.id) {
    return refuseCall(
      call,
      `requestState of approval ${approvalId} presented by another caller (${call.principal.id}, bound to ${claims.p})`,
      refusal(403, `Approval ${approvalId} belongs to another caller`, "foreign requestState", data),
      { ...event, approvalId },
    );
  }
  const args = callArguments(call.msg);
  const hash = argumentsHash(args);
  if (claims.s !== call.server || claims.m !== call.msg.method || claims.t !== (call.msg.name ?? "")) {
    return refuseCall(
      call,
      `requestState of approval ${approvalId} presented for another call (${call.server} ${call.msg.method} ${call.msg.name})`,
      refusal(403, `Approval ${approvalId} does not cover this call`, "requestState for another call", data),
      { ...event, approvalId },
    );
  }
  if (claims.h !== hash) {
    return refuseCall(
      call,
      `arguments changed since approval ${approvalId} was requested (hash ${hash}, approved ${claims.h})`,
      refusal(
        403,
        `The arguments changed since approval ${approvalId} was requested; it does not cover this call`,
        "arguments changed",
        { ...data, status: "arguments_changed" },
      ),
      { ...event, approvalId, argumentsHash: hash },
    );
  }
  let approval = await ctx.store.getApproval(approvalId);
  if (
    approval === undefined ||
    approval.principalId !== call.principal.id ||
    approval.argumentsHash !== hash ||
    approval.server !== call.server ||
    approval.tool !== (call.msg.name ?? "")
  ) {
    return refuseCall(
      call,
      `requestState names approval ${approvalId}, which does not exist or is bound to another call`,
      refusal(403, `Approval ${approvalId} does not cover this call`, "unknown approval", data),
      { ...event, approvalId },
    );
  }
  if (approval.status === "pending") {
    const now = Date.now();
    if (approval.expiresAt.getTime() <= now) approval = await expireApproval(ctx, approval);
    else {
      const hold = Math.min(approval.expiresAt.getTime(), now + ctx.config.retryHoldSeconds * 1000);
      const outcome = await ctx.waitFor(call, approval, new Date(hold));
      if (outcome.kind === "aborted") return { kind: "replied", label: "review_abandoned" };
      if (outcome.kind === "decided") approval = outcome.record;
      else {
        approval = (await ctx.store.getApproval(approvalId)) ?? approval;
        if (approval.status === "pending" && approval.expiresAt.getTime() <= Date.now()) {
          approval = await expireApproval(ctx, approval);
        }
      }
      if (approval.status === "pending") return inputRequired(ctx, call, approval);
    }
  }
  return settleApproval(ctx, call, approval, call.res);
}
