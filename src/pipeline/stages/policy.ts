/**
 * Policy (clause 3 of src/authz/mayCall.ts) decides every request that names a method:
 * allow, deny or review. A fault while deciding is a refusal (fail closed, and a 500 the
 * operator sees). `review` is left to the next stage.
 */
import { policyRefusal } from "../../core/errors.js";
import { deny, newDecisionId, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function policy({ authorization, callRule, log, metrics }: StageDeps): Step {
  return (call) => {
    const { msg, principal } = call;
    if (msg === null || principal === null || msg.kind !== "request" || msg.method === null) return undefined;
    const policySet = authorization.policy();
    const decisionId = newDecisionId();
    call.policySet = policySet;
    call.now = new Date();
    call.protocolVersion = msg.metaProtocolVersion ?? headerText(call.headers["mcp-protocol-version"]);
    let decided: ReturnType<typeof callRule.decide>;
    try {
      decided = callRule.decide(policySet, principal, call.server, msg, call);
    } catch (err) {
      log.error({ err, server: call.server }, "policy evaluation failed: refusing");
      call.policy = { decisionId, ruleIds: [], version: policySet.version };
      return deny(err, "policy evaluation failed");
    }
    const { decision } = decided;
    call.decision = decision;
    call.tier = decided.resource.tier;
    call.policy = { decisionId, ruleIds: decision.ruleIds, version: decision.policyVersion };
    metrics.decisions.inc({ effect: decision.effect });
    if (decision.effect === "allow") call.reason = decision.reason;
    else if (decision.effect === "deny")
      return deny(policyRefusal("deny", decisionId, decision.reason), decision.reason);
    return undefined;
  };
}

function headerText(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}
