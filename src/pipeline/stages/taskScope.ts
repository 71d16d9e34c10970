/**
 * A task token's call budget (docs/tasks.md). The task's grants are its principal's scopes,
 * so the `server` and `credential scope` stages already keep a task token within them (server
 * and tool); this stage charges a task that has a budget one call per tools/call, atomically
 * in the store so the budget holds across replicas. The call that spends the last unit ends
 * the task (every replica then refuses its token at authentication); a call that finds the
 * budget spent or the task over is refused. A store that cannot answer is a 503 (fail closed).
 */

import { forbidden, storeUnavailable } from "../../core/errors.js";
import { isStoreOutage, outageReason } from "../../core/outage.js";
import { deny, type Outcome, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function taskScope({ tasks, log }: StageDeps): Step {
  return (call) => {
    const { msg, principal } = call;
    if (principal === null || principal.method !== "task" || principal.task === undefined) return undefined;
    if (msg === null || msg.kind !== "request" || msg.method !== "tools/call") return undefined;
    const binding = principal.task;
    if (binding.remainingCalls === null) return undefined;
    if (tasks === undefined || tasks === null)
      return deny(
        forbidden("task budget cannot be charged"),
        "no task runtime to charge the budget: failing closed",
      );
    return tasks.consume(binding.id).then(
      (outcome): Outcome => {
        if (!outcome.ok)
          return deny(forbidden("task is over"), `task ${binding.id}: ${outcome.reason}`, {
            task: binding.id,
          });
        const remainingCalls =
          outcome.budget === null ? null : Math.max(0, outcome.budget - outcome.callsUsed);
        call.principal = { ...principal, task: { ...binding, remainingCalls } };
        return undefined;
      },
      (err: unknown): Outcome => {
        if (isStoreOutage(err))
          return deny(storeUnavailable(outageReason(err)), "task budget unavailable: failing closed");
        log.error({ err }, "charging a task's budget failed: refusing");
        return deny(err, "charging the task's budget failed: failing closed");
      },
    );
  };
}
