/**
 * Runtime review of a call policy decided `review` for (src/review/gate.ts). A tool the
 * upstream does not list cannot run, so it costs no approval (nor webhook). The gate either
 * answers itself (input_required, or a refusal on a held stream), refuses, or hands back the
 * approved call to forward. Without a gate, or for a method review cannot hold, the call is
 * refused (-32041), recorded as `review`.
 */
import { requestRecord } from "../../audit/requestRecord.js";
import { policyRefusal } from "../../core/errors.js";
import { type CallState, deny, type Outcome, REPLIED, Refusal, recorded, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function review(deps: StageDeps): Step {
  const { audit, authorization, listedTools, log } = deps;
  const gate = deps.review;

  const held = async (call: CallState): Promise<Outcome> => {
    const { msg, principal, decision, policy } = call;
    if (gate === null || msg === null || principal === null || decision === null || policy === null)
      return undefined;
    const record = (effect: "allow" | "deny" | "review", why: string, detail: Record<string, unknown>) => {
      const entry = requestRecord(call, effect, why, detail, authorization.policy().version);
      return effect === "allow" ? audit.recordDurable(entry) : audit.record(entry);
    };
    let outcome: Awaited<ReturnType<typeof gate.handle>>;
    try {
      outcome = await gate.handle({
        principal,
        server: call.server,
        msg,
        decision,
        decisionId: policy.decisionId,
        protocolVersion: call.protocolVersion,
        accept: typeof call.headers.accept === "string" ? call.headers.accept : "",
        res: call.res,
        audit: record,
      });
    } catch (err) {
      log.error({ err, server: call.server }, "review failed: refusing");
      return deny(err, "review failed unexpectedly: failing closed");
    }
    if (outcome.kind === "replied") {
      call.label = outcome.label;
      return REPLIED;
    }
    // The gate recorded its refusal under the policy decision's id.
    if (outcome.kind === "refuse") return recorded(outcome.error, policy.decisionId);
    call.msg = outcome.msg;
    call.out = outcome.res;
    call.reason = outcome.reason;
    call.reviewed = true;
    return undefined;
  };

  return (call) => {
    const { msg, decision, policy } = call;
    if (decision?.effect !== "review" || msg === null || policy === null) return undefined;
    const unlisted = listedTools.unlistedTool(call.server, msg);
    if (unlisted !== null) return deny(unlisted, unlisted.reason, { event: "review.unknown_tool" });
    if (gate?.handles(msg)) return held(call);
    return new Refusal(
      policyRefusal("review", policy.decisionId, decision.reason),
      "review",
      decision.reason,
    );
  };
}
