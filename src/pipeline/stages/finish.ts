/**
 * Finish: the request's metrics (counter by outcome, duration). Labels come from bounded
 * sets only: the URL's server name is not a label until it is configured.
 */
import { methodLabel, outcomeLabel } from "../../telemetry/metrics.js";
import type { CallState, Step } from "../callState.js";
import type { PipelineDeps } from "../deps.js";

export function finish({ metrics }: PipelineDeps): Step {
  return (call: CallState) => {
    const server = metrics.serverLabel(call.server);
    const method = methodLabel(call.msg?.method ?? null);
    metrics.requests.inc({ server, method, outcome: outcomeLabel(call.label ?? "allowed") });
    metrics.duration.observe({ server, method }, (performance.now() - call.started) / 1000);
    return undefined;
  };
}
