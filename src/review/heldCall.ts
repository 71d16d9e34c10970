/**
 * Review for MCP 2025-11-25 and earlier: the call is held open on an SSE response with
 * `notifications/progress` (or SSE comments without a progressToken) every
 * `review.progressIntervalSeconds` (./heldResponse.ts) until the decision or the deadline;
 * then it is forwarded on the same stream, or refused there as its JSON-RPC response.
 */
import type { ServerResponse } from "node:http";
import type { JsonObject } from "../classify/message.js";
import type { ApprovalRecord } from "../store/types.js";
import { expireApproval, settleApproval } from "./approvalConsumption.js";
import { HeldResponse, openHeldStream, sseEvent } from "./heldResponse.js";
import type { HeldCall, ReviewContext, ReviewOutcome } from "./reviewCall.js";
import type { WaitOutcome } from "./waiter.js";

export async function holdCall(
  ctx: ReviewContext,
  call: HeldCall,
  approval: ApprovalRecord,
): Promise<ReviewOutcome> {
  const { res, msg } = call;
  const stream = call.accept.includes("text/event-stream");
  let stop = () => {};
  if (stream) {
    openHeldStream(res);
    const params = msg.message.params as JsonObject | undefined;
    const token = (params?._meta as JsonObject | undefined)?.progressToken;
    const started = Date.now();
    const total = Math.max(1, Math.round((approval.expiresAt.getTime() - started) / 1000));
    let last = 0;
    const beat = () => {
      if (res.writableEnded) return;
      const waited = Math.max(last + 1, Math.round((Date.now() - started) / 1000));
      last = waited;
      if (typeof token === "string" || typeof token === "number") {
        res.write(
          sseEvent({
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: {
              progressToken: token,
              progress: waited,
              total,
              message: `Waiting for an approver: approval ${approval.id} (until ${approval.expiresAt.toISOString()})`,
            },
          }),
        );
      } else res.write(`: waiting for approval ${approval.id}\n\n`);
    };
    beat();
    const timer = setInterval(beat, ctx.config.progressIntervalSeconds * 1000);
    stop = () => clearInterval(timer);
  }
  let outcome: WaitOutcome;
  try {
    outcome = await ctx.waitFor(call, approval, approval.expiresAt);
  } finally {
    stop();
  }
  if (outcome.kind === "aborted") return { kind: "replied", label: "review_abandoned" };
  let current =
    outcome.kind === "decided" ? outcome.record : ((await ctx.store.getApproval(approval.id)) ?? approval);
  if (current.status === "pending") current = await expireApproval(ctx, current);
  const target = stream ? new HeldResponse(res, msg.id) : res;
  const settled = await settleApproval(ctx, call, current, target as ServerResponse);
  if (settled.kind === "refuse" && stream) {
    // Headers are sent: the refusal travels as the JSON-RPC response on the stream.
    const { error } = settled;
    res.end(
      sseEvent({
        jsonrpc: "2.0",
        id: msg.id,
        error: {
          code: error.code,
          message: error.message,
          data: { ...(error.data as object), decisionId: call.decisionId },
        },
      }),
    );
    return { kind: "replied", label: String(error.status) };
  }
  return settled;
}
