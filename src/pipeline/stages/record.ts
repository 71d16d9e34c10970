/**
 * Record the allow before forwarding. A write- or destructive-tier call is recorded durably
 * first (a crash right after forwarding cannot lose the record); if that fails the call is
 * refused. A reviewed call's forwarding was recorded when its approval was consumed.
 */
import { requestRecord } from "../../audit/requestRecord.js";
import { storeUnavailable } from "../../core/errors.js";
import { type CallState, type Outcome, type Step, unrecorded } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function record({ audit, authorization, log }: StageDeps): Step {
  const durable = async (call: CallState): Promise<Outcome> => {
    try {
      await audit.recordDurable(
        requestRecord(call, "allow", call.reason, null, authorization.policy().version),
      );
      return undefined;
    } catch (err) {
      log.error({ err, server: call.server }, "cannot record a write-tier call durably: refusing");
      return unrecorded(storeUnavailable("audit store unavailable"));
    }
  };
  return (call) => {
    if (call.reviewed) return undefined;
    if (call.tier === "write" || call.tier === "destructive") return durable(call);
    audit.record(requestRecord(call, "allow", call.reason, null, authorization.policy().version));
    return undefined;
  };
}
