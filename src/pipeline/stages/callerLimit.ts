/**
 * Per-caller caps (RFC 6585 §4, 429 with Retry-After): one caller cannot hold more than its
 * share of an upstream (limits.callsInFlightPerCaller), nor more than its share of long-lived
 * GET streams (limits.streamsPerCaller, limits.streamsPerSession). A slot is held until the
 * response closes. See ../callerLimits.ts.
 */
import { GatewayError } from "../../core/errors.js";
import { limitOf } from "../callerLimits.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function callerLimit({ limits }: StageDeps): Step {
  return (call) => {
    const slot = limits.call(call.principal?.id ?? "", call.server);
    if (slot instanceof GatewayError) return deny(slot, slot.reason, { event: "limit.calls_in_flight" });
    call.hold(slot);
    return undefined;
  };
}

export function streamLimit({ limits }: StageDeps): Step {
  return (call) => {
    if (call.method !== "GET") return undefined;
    const session = call.headers["mcp-session-id"];
    const slot = limits.stream(
      call.principal?.id ?? "",
      call.server,
      typeof session === "string" ? session : null,
    );
    if (slot instanceof GatewayError) return deny(slot, slot.reason, { event: `limit.${limitOf(slot)}` });
    call.hold(slot);
    return undefined;
  };
}
