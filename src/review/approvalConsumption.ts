/**
 * The end of a review: a decided approval is consumed once and the call forwarded, or the call
 * is refused naming the approval (replayed, denied, expired). Single use is enforced by the
 * store's atomic consume; an approval past its deadline is marked expired by whoever sees it
 * first, and audited once.
 */
import type { ServerResponse } from "node:http";
import { GatewayError, RpcCode } from "../core/errors.js";
import type { ApprovalRecord } from "../store/types.js";
import { withoutRequestState } from "./binding.js";
import { approvalAudit } from "./decide.js";
import type { HeldCall, ReviewContext, ReviewOutcome } from "./reviewCall.js";

/** A -32041 review refusal carrying the approval's id and status. */
export function refusal(
  status: number,
  message: string,
  reason: string,
  data: Record<string, unknown>,
): GatewayError {
  return new GatewayError(status, RpcCode.ReviewRequired, message, reason, data);
}

/** Audits the refusal of `call` and answers it with `error`. */
export function refuseCall(
  call: HeldCall,
  reason: string,
  error: GatewayError,
  detail: Record<string, unknown>,
): ReviewOutcome {
  call.audit("deny", reason, detail);
  return { kind: "refuse", error };
}

/** Marks a pending approval past its deadline expired (audited once, by whoever expires it). */
export async function expireApproval(ctx: ReviewContext, a: ApprovalRecord): Promise<ApprovalRecord> {
  const now = new Date();
  if (await ctx.store.expireApproval(a.id, now)) {
    ctx.record(
      approvalAudit(
        a,
        "deny",
        `approval ${a.id} expired without a decision`,
        { event: "review.expired" },
        now,
      ),
    );
  }
  return (await ctx.store.getApproval(a.id)) ?? { ...a, status: "expired" };
}

/** The decision is known: forward once (consuming the approval) or refuse, naming the approval. */
export async function settleApproval(
  ctx: ReviewContext,
  call: HeldCall,
  a: ApprovalRecord,
  res: ServerResponse,
): Promise<ReviewOutcome> {
  const data = { approvalId: a.id, status: a.status };
  const detail = { approvalId: a.id, decidedBy: a.decidedBy, decidedVia: a.decidedVia };
  switch (a.status) {
    case "approved": {
      if (!(await ctx.store.consumeApproval(a.id, new Date()))) {
        return refuseCall(
          call,
          `approval ${a.id} could not be consumed (already used or past its deadline)`,
          refusal(403, `Approval ${a.id} was already used or has expired`, "approval not consumable", data),
          { event: "review.replay_refused", ...detail },
        );
      }
      const reason = `approved by ${a.decidedBy} via ${a.decidedVia}; approval ${a.id} consumed`;
      // Durable before the approved call runs (it is write- or destructive-tier by nature).
      await call.audit("allow", reason, { event: "review.consumed", ...detail });
      return { kind: "forward", msg: withoutRequestState(call.msg), res, reason };
    }
    case "consumed":
      return refuseCall(
        call,
        `approval ${a.id} was already used (single use): replay refused`,
        refusal(
          403,
          `Approval ${a.id} was already used; each approval allows one call`,
          "approval replay",
          data,
        ),
        { event: "review.replay_refused", ...detail },
      );
    case "denied":
      return refuseCall(
        call,
        `denied by ${a.decidedBy} via ${a.decidedVia} (approval ${a.id})${a.reason ? `: ${a.reason}` : ""}`,
        refusal(403, `An approver denied this call (approval ${a.id})`, "denied by an approver", data),
        { event: "review.denied", ...detail },
      );
    default:
      return refuseCall(
        call,
        `approval ${a.id} expired without a decision`,
        refusal(
          403,
          `Review timed out: nobody approved this call in time (approval ${a.id})`,
          "review expired",
          {
            ...data,
            status: "expired",
          },
        ),
        { event: "review.expired", approvalId: a.id },
      );
  }
}
