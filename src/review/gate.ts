/**
 * Runtime review on the request path: what the listener does when policy decides `review`
 * for a call (tools/call, prompts/get, resources/read). It creates an approval bound to the
 * exact call (./binding.ts), announces it (webhook), and then, by protocol revision:
 *
 * - 2026-07-28 (MCP basic/patterns/mrtr): answers at once with an `input_required` result
 *   whose `requestState` (./requestState.ts) names the approval; a retry carrying it waits a
 *   little for a decision (`review.retryHoldSeconds`), then is forwarded once approved (the
 *   approval consumed), refused once denied or expired, or told "still pending" again.
 * - 2025-11-25 and earlier: holds the call open on an SSE response with progress
 *   notifications (./heldResponse.ts) until the decision or the deadline.
 *
 * Every step becomes an audit record through the listener's own audit function.
 */
import type { Logger } from "pino";
import { isModernVersion } from "../classify/headers.js";
import type { ClassifiedMessage } from "../classify/message.js";
import { GatewayError } from "../core/errors.js";
import type { ApprovalRecord, AuditRecord, Store } from "../store/types.js";
import { requestApproval } from "./approvalRequest.js";
import { presentedRequestState, REVIEWABLE_METHODS } from "./binding.js";
import { type Approver, type DecideOutcome, decideApproval } from "./decide.js";
import { holdCall } from "./heldCall.js";
import { type InputRequiredContext, inputRequired, retryWithRequestState } from "./inputRequired.js";
import { deriveReviewKey } from "./keys.js";
import { isGatewayRequestState } from "./requestState.js";
import type { HeldCall, ReviewConfig, ReviewOutcome } from "./reviewCall.js";
import { signedLinkPath } from "./signedLinks.js";
import { ApprovalWaiter, type WaitOutcome } from "./waiter.js";
import { ApprovalWebhook, notificationOf } from "./webhook.js";

export {
  type HeldCall,
  REVIEW_META_KEY,
  type ReviewConfig,
  type ReviewOutcome,
} from "./reviewCall.js";

export interface ReviewDeps {
  store: Store;
  config: ReviewConfig;
  environment: string;
  secret: Buffer;
  log: Logger;
  /** Writes an audit record (the gateway's AuditWriter). */
  record(entry: AuditRecord): void;
  baseUrl(): string;
  /** The webhook secret, read at startup. */
  webhookSecret: string | null;
}

export class ReviewGate {
  readonly linkKey: Buffer;
  private readonly waiter: ApprovalWaiter;
  private readonly webhook: ApprovalWebhook | null;
  /** What the steps of a review (./inputRequired.ts, ./heldCall.ts, …) work with. */
  private readonly ctx: InputRequiredContext;

  constructor(private readonly deps: ReviewDeps) {
    this.linkKey = deriveReviewKey(deps.secret, "approval-link");
    this.waiter = new ApprovalWaiter(deps.store, deps.log);
    const hook = deps.config.webhook;
    this.webhook =
      hook && deps.webhookSecret !== null
        ? new ApprovalWebhook(hook.url, deps.webhookSecret, deps.log)
        : null;
    this.ctx = {
      store: deps.store,
      config: deps.config,
      record: (entry) => deps.record(entry),
      waitFor: (call, approval, until) => this.waitFor(call, approval, until),
      stateKey: deriveReviewKey(deps.secret, "request-state"),
    };
  }

  start(): void {
    this.waiter.start();
  }

  close(): Promise<void> {
    return this.waiter.close();
  }

  /** Whether review can hold this request (the others keep the plain -32041 refusal). */
  handles(msg: ClassifiedMessage): boolean {
    return msg.kind === "request" && msg.method !== null && REVIEWABLE_METHODS.has(msg.method);
  }

  async handle(call: HeldCall): Promise<ReviewOutcome> {
    const modern = isModernVersion(call.msg.metaProtocolVersion) || isModernVersion(call.protocolVersion);
    const state = presentedRequestState(call.msg);
    if (modern && state !== null && isGatewayRequestState(state))
      return retryWithRequestState(this.ctx, call, state);
    const approval = await requestApproval(
      {
        ...this.ctx,
        environment: this.deps.environment,
        announce: (a) => {
          if (this.webhook !== null) void this.webhook.send(notificationOf(a, ...this.links(a)));
        },
      },
      call,
    );
    if (approval instanceof GatewayError) return { kind: "refuse", error: approval };
    return modern ? inputRequired(this.ctx, call, approval) : holdCall(this.ctx, call, approval);
  }

  /** An approver's decision from this process (signed link, console): see ./decide.ts. */
  decide(
    id: string,
    decision: "approved" | "denied",
    approver: Approver,
    reason: string | null = null,
  ): Promise<DecideOutcome> {
    return decideApproval(this.deps.store, id, decision, approver, {
      reason,
      audit: (r) => this.deps.record(r),
    });
  }

  getApproval(id: string): Promise<ApprovalRecord | undefined> {
    return this.deps.store.getApproval(id);
  }

  /** Signed approve and deny URLs, valid until the link lifetime or the approval's deadline. */
  links(a: ApprovalRecord): [string, string] {
    const until = new Date(
      Math.min(a.expiresAt.getTime(), a.createdAt.getTime() + this.deps.config.linkLifetimeSeconds * 1000),
    );
    const base = this.deps.baseUrl();
    return [
      `${base}${signedLinkPath(this.linkKey, "approve", a.id, until)}`,
      `${base}${signedLinkPath(this.linkKey, "deny", a.id, until)}`,
    ];
  }

  private waitFor(call: HeldCall, approval: ApprovalRecord, until: Date): Promise<WaitOutcome> {
    const controller = new AbortController();
    const onClose = () => {
      if (!call.res.writableFinished) controller.abort();
    };
    call.res.on("close", onClose);
    return this.waiter.wait(approval.id, until, controller.signal).then((outcome) => {
      call.res.off("close", onClose);
      if (outcome.kind === "aborted") {
        call.audit(
          "review",
          `caller went away while approval ${approval.id} was pending; the approval stays`,
          {
            event: "review.abandoned",
            approvalId: approval.id,
          },
        );
      }
      return outcome;
    });
  }
}
