/**
 * Tool pins (clause 2 of src/authz/mayCall.ts): a tool whose definition changed since it was
 * pinned is blocked until an operator accepts it (pinning.onChange: block), whatever policy
 * says. The refusal carries a decision id like a policy refusal (-32042).
 */
import { policyRefusal } from "../../core/errors.js";
import { deny, newDecisionId, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function toolPins({ callRule, authorization }: StageDeps): Step {
  return (call) => {
    const { msg } = call;
    if (msg?.kind !== "request" || msg.method !== "tools/call") return undefined;
    const tool = msg.name ?? "";
    if (!callRule.blocked(call.server, tool)) return undefined;
    const decisionId = newDecisionId();
    call.policy = { decisionId, ruleIds: [], version: authorization.policy().version };
    const why = `tool ${tool} changed since it was pinned; blocked until an operator accepts it`;
    return deny(policyRefusal("tool-changed", decisionId, why), why);
  };
}
