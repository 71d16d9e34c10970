/**
 * A call policy sent to review, as the request pipeline hands it to the gate (./gate.ts), and
 * what the gate answers; shared by the gate's steps (./approvalRequest.ts, ./inputRequired.ts,
 * ./heldCall.ts, ./approvalConsumption.ts).
 */
import type { ServerResponse } from "node:http";
import type { PolicyDecision } from "../authz/policy/types.js";
import type { ClassifiedMessage } from "../classify/message.js";
import type { Config } from "../config/schema.js";
import type { GatewayError } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { ApprovalRecord, AuditRecord, Store } from "../store/types.js";
import type { WaitOutcome } from "./waiter.js";

/** The `_meta` key of the gateway's review details in an `input_required` result. */
export const REVIEW_META_KEY = "portcullis/review";

export type ReviewConfig = Config["review"];

export interface HeldCall {
  principal: Principal;
  server: string;
  msg: ClassifiedMessage;
  decision: PolicyDecision;
  decisionId: string;
  /** The request's protocol revision (`_meta` or the MCP-Protocol-Version header). */
  protocolVersion: string | null;
  accept: string;
  res: ServerResponse;
  /**
   * Records one step of this call (the listener's auditDecision). An "allow" (the approved
   * call is about to run) is committed before it resolves.
   */
  audit(
    decision: "allow" | "deny" | "review",
    reason: string,
    detail: Record<string, unknown>,
  ): void | Promise<void>;
}

export type ReviewOutcome =
  /** The gate answered (input_required, or a refusal on an open stream); `label` is the metrics outcome. */
  | { kind: "replied"; label: string }
  /** Refuse with this error (nothing written yet; already audited). */
  | { kind: "refuse"; error: GatewayError }
  /** Approved and consumed: forward `msg`, writing the reply to `res`. */
  | { kind: "forward"; msg: ClassifiedMessage; res: ServerResponse; reason: string };

/** What the gate's steps share: the store, the settings, the audit and the waiting. */
export interface ReviewContext {
  store: Store;
  config: ReviewConfig;
  /** Writes an audit record not tied to the call (an expiry). */
  record(entry: AuditRecord): void;
  /** Waits for a decision until `until`, or until the caller goes away (audited). */
  waitFor(call: HeldCall, approval: ApprovalRecord, until: Date): Promise<WaitOutcome>;
}
