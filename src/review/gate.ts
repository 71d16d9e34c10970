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
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { PolicyDecision } from "../authz/policy/types.js";
import { isModernVersion } from "../classify/headers.js";
import type { ClassifiedMessage, JsonObject } from "../classify/message.js";
import type { Config } from "../config/schema.js";
import { GatewayError, RpcCode, tooManyRequests } from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import type { ApprovalRecord, AuditRecord, NewApproval, Store } from "../store/types.js";
import { summarizeArguments } from "./argumentsSummary.js";
import {
  argumentsHash,
  callArguments,
  newApprovalId,
  presentedRequestState,
  REVIEWABLE_METHODS,
  withoutRequestState,
} from "./binding.js";
import {
  APPROVED_USE_WINDOW_SECONDS,
  type Approver,
  approvalAudit,
  type DecideOutcome,
  decideApproval,
} from "./decide.js";
import { HeldResponse, openHeldStream, sseEvent } from "./heldResponse.js";
import { deriveReviewKey } from "./keys.js";
import { decodeRequestState, encodeRequestState, isGatewayRequestState } from "./requestState.js";
import { signedLinkPath } from "./signedLinks.js";
import { ApprovalWaiter, type WaitOutcome } from "./waiter.js";
import { ApprovalWebhook, notificationOf } from "./webhook.js";

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
  /** Records one step of this call (the listener's auditDecision). */
  /** An "allow" (the approved call is about to run) is committed before it resolves. */
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

function refusal(
  status: number,
  message: string,
  reason: string,
  data: Record<string, unknown>,
): GatewayError {
  return new GatewayError(status, RpcCode.ReviewRequired, message, reason, data);
}

export class ReviewGate {
  private readonly stateKey: Buffer;
  readonly linkKey: Buffer;
  private readonly waiter: ApprovalWaiter;
  private readonly webhook: ApprovalWebhook | null;

  constructor(private readonly deps: ReviewDeps) {
    this.stateKey = deriveReviewKey(deps.secret, "request-state");
    this.linkKey = deriveReviewKey(deps.secret, "approval-link");
    this.waiter = new ApprovalWaiter(deps.store, deps.log);
    const hook = deps.config.webhook;
    this.webhook =
      hook && deps.webhookSecret !== null
        ? new ApprovalWebhook(hook.url, deps.webhookSecret, deps.log)
        : null;
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
    if (modern && state !== null && isGatewayRequestState(state)) return this.retry(call, state);
    const approval = await this.request(call);
    if (approval instanceof GatewayError) return { kind: "refuse", error: approval };
    return modern ? this.inputRequired(call, approval) : this.hold(call, approval);
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

  // ── creating an approval ──────────────────────────────────────────────

  /** A new pending approval, or the 429 to answer when the caller has too many pending. */
  private async request(call: HeldCall): Promise<ApprovalRecord | GatewayError> {
    const { principal, msg, decision } = call;
    const args = callArguments(msg);
    const now = new Date();
    // Each approval is a row, a webhook and an approver's attention: bounded per caller.
    const cap = this.deps.config.maxPendingPerCaller;
    const pending = await this.deps.store.pendingApprovalsOf(principal.id, now);
    if (pending.count >= cap) {
      const retryAfter = ((pending.nextExpiry?.getTime() ?? now.getTime()) - now.getTime()) / 1000;
      const reason = `caller already has ${pending.count} pending approvals (review.maxPendingPerCaller ${cap})`;
      call.audit("deny", `review refused: ${reason}`, { event: "review.limit", pending: pending.count });
      return tooManyRequests("pending_approvals", retryAfter, reason).withId(msg.id);
    }
    const timeout = decision.reviewTimeoutSeconds ?? this.deps.config.defaultTimeoutSeconds;
    const fresh: NewApproval = {
      id: newApprovalId(),
      environment: this.deps.environment,
      principalId: principal.id,
      principalName: principal.name,
      principalMethod: principal.method,
      credentialId: principal.credentialId,
      server: call.server,
      rpcMethod: msg.method as string,
      tool: msg.name ?? "",
      argumentsHash: argumentsHash(args),
      argumentsSummary: summarizeArguments(args),
      decisionId: call.decisionId,
      ruleIds: decision.ruleIds,
      policyVersion: decision.policyVersion,
      createdAt: now,
      expiresAt: new Date(now.getTime() + timeout * 1000),
    };
    try {
      await this.deps.store.insertApproval(fresh);
    } catch (err) {
      call.audit("deny", "review requested but the approval could not be stored: failing closed", {});
      throw err;
    }
    const approval: ApprovalRecord = {
      ...fresh,
      status: "pending",
      decidedAt: null,
      decidedBy: null,
      decidedVia: null,
      reason: null,
      consumedAt: null,
    };
    call.audit(
      "review",
      `review requested: approval ${approval.id}, waiting up to ${timeout}s (${decision.reason})`,
      {
        event: "review.requested",
        approvalId: approval.id,
        argumentsHash: approval.argumentsHash,
        expiresAt: approval.expiresAt.toISOString(),
      },
    );
    if (this.webhook !== null) void this.webhook.send(notificationOf(approval, ...this.links(approval)));
    return approval;
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

  // ── 2026-07-28: input_required and the retry ───────────────────────────

  private pendingMessage(a: ApprovalRecord): string {
    return (
      `This call needs a human approver's decision (approval ${a.id}, until ${a.expiresAt.toISOString()}). ` +
      `An approver other than you decides in the Portcullis console, with \`portcullis approvals approve ${a.id}\`, ` +
      "or from the review notification. Retry this same request with the requestState to continue."
    );
  }

  private inputRequired(call: HeldCall, a: ApprovalRecord): ReviewOutcome {
    const state = encodeRequestState(this.stateKey, {
      a: a.id,
      p: a.principalId,
      s: a.server,
      m: a.rpcMethod,
      t: a.tool,
      h: a.argumentsHash,
      e: Math.floor(a.expiresAt.getTime() / 1000) + APPROVED_USE_WINDOW_SECONDS,
    });
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: call.msg.id,
      result: {
        resultType: "input_required",
        requestState: state,
        _meta: {
          [REVIEW_META_KEY]: {
            approvalId: a.id,
            decisionId: call.decisionId,
            status: "pending",
            expiresAt: a.expiresAt.toISOString(),
            message: this.pendingMessage(a),
          },
        },
      },
    });
    call.res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      "cache-control": "no-store",
    });
    call.res.end(body);
    return { kind: "replied", label: "review_pending" };
  }

  private refuse(
    call: HeldCall,
    reason: string,
    error: GatewayError,
    detail: Record<string, unknown>,
  ): ReviewOutcome {
    call.audit("deny", reason, detail);
    return { kind: "refuse", error };
  }

  private async retry(call: HeldCall, presented: string): Promise<ReviewOutcome> {
    const claims = decodeRequestState(this.stateKey, presented);
    const event = { event: "review.retry_refused" };
    if (claims === null) {
      return this.refuse(
        call,
        "requestState failed verification (not issued by this gateway, or altered)",
        new GatewayError(
          400,
          RpcCode.InvalidParams,
          "Invalid requestState",
          "requestState failed verification",
        ),
        event,
      );
    }
    const approvalId = claims.a;
    const data = { approvalId };
    if (claims.p !== call.principal.id) {
      return this.refuse(
        call,
        `requestState of approval ${approvalId} presented by another caller (${call.principal.id}, bound to ${claims.p})`,
        refusal(403, `Approval ${approvalId} belongs to another caller`, "foreign requestState", data),
        { ...event, approvalId },
      );
    }
    const args = callArguments(call.msg);
    const hash = argumentsHash(args);
    if (claims.s !== call.server || claims.m !== call.msg.method || claims.t !== (call.msg.name ?? "")) {
      return this.refuse(
        call,
        `requestState of approval ${approvalId} presented for another call (${call.server} ${call.msg.method} ${call.msg.name})`,
        refusal(
          403,
          `Approval ${approvalId} does not cover this call`,
          "requestState for another call",
          data,
        ),
        { ...event, approvalId },
      );
    }
    if (claims.h !== hash) {
      return this.refuse(
        call,
        `arguments changed since approval ${approvalId} was requested (hash ${hash}, approved ${claims.h})`,
        refusal(
          403,
          `The arguments changed since approval ${approvalId} was requested; it does not cover this call`,
          "arguments changed",
          { ...data, status: "arguments_changed" },
        ),
        { ...event, approvalId, argumentsHash: hash },
      );
    }
    let approval = await this.deps.store.getApproval(approvalId);
    if (
      approval === undefined ||
      approval.principalId !== call.principal.id ||
      approval.argumentsHash !== hash ||
      approval.server !== call.server ||
      approval.tool !== (call.msg.name ?? "")
    ) {
      return this.refuse(
        call,
        `requestState names approval ${approvalId}, which does not exist or is bound to another call`,
        refusal(403, `Approval ${approvalId} does not cover this call`, "unknown approval", data),
        { ...event, approvalId },
      );
    }
    if (approval.status === "pending") {
      const now = Date.now();
      if (approval.expiresAt.getTime() <= now) approval = await this.expire(approval);
      else {
        const hold = Math.min(approval.expiresAt.getTime(), now + this.deps.config.retryHoldSeconds * 1000);
        const outcome = await this.waitFor(call, approval, new Date(hold));
        if (outcome.kind === "aborted") return { kind: "replied", label: "review_abandoned" };
        if (outcome.kind === "decided") approval = outcome.record;
        else {
          approval = (await this.deps.store.getApproval(approvalId)) ?? approval;
          if (approval.status === "pending" && approval.expiresAt.getTime() <= Date.now()) {
            approval = await this.expire(approval);
          }
        }
        if (approval.status === "pending") return this.inputRequired(call, approval);
      }
    }
    return this.settle(call, approval, call.res);
  }

  // ── 2025-x: holding the request open ────────────────────────────────────

  private async hold(call: HeldCall, approval: ApprovalRecord): Promise<ReviewOutcome> {
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
      const timer = setInterval(beat, this.deps.config.progressIntervalSeconds * 1000);
      stop = () => clearInterval(timer);
    }
    let outcome: WaitOutcome;
    try {
      outcome = await this.waitFor(call, approval, approval.expiresAt);
    } finally {
      stop();
    }
    if (outcome.kind === "aborted") return { kind: "replied", label: "review_abandoned" };
    let current =
      outcome.kind === "decided"
        ? outcome.record
        : ((await this.deps.store.getApproval(approval.id)) ?? approval);
    if (current.status === "pending") current = await this.expire(current);
    const target = stream ? new HeldResponse(res, msg.id) : res;
    const settled = await this.settle(call, current, target as ServerResponse);
    if (settled.kind === "refuse" && stream) {
      // Headers are sent: the refusal travels as the JSON-RPC response on the stream.
      const { error } = settled;
      res.end(
        sseEvent({
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: error.code, message: error.message, data: error.data },
        }),
      );
      return { kind: "replied", label: String(error.status) };
    }
    return settled;
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

  /** Marks a pending approval past its deadline expired (audited once, by whoever expires it). */
  private async expire(a: ApprovalRecord): Promise<ApprovalRecord> {
    const now = new Date();
    if (await this.deps.store.expireApproval(a.id, now)) {
      this.deps.record(
        approvalAudit(
          a,
          "deny",
          `approval ${a.id} expired without a decision`,
          { event: "review.expired" },
          now,
        ),
      );
    }
    return (await this.deps.store.getApproval(a.id)) ?? { ...a, status: "expired" };
  }

  /** The decision is known: forward once (consuming the approval) or refuse, naming the approval. */
  private async settle(call: HeldCall, a: ApprovalRecord, res: ServerResponse): Promise<ReviewOutcome> {
    const data = { approvalId: a.id, status: a.status };
    const detail = { approvalId: a.id, decidedBy: a.decidedBy, decidedVia: a.decidedVia };
    switch (a.status) {
      case "approved": {
        if (!(await this.deps.store.consumeApproval(a.id, new Date()))) {
          return this.refuse(
            call,
            `approval ${a.id} could not be consumed (already used or past its deadline)`,
            refusal(403, `Approval ${a.id} was already used or has expired`, "approval not consumable", data),
            { event: "review.replay_refused", ...detail },
          );
        }
        const reason = `approved by ${a.decidedBy} via ${a.decidedVia}; approval ${a.id} consumed`;
        // Durable before the approved call runs (it is write- or destructive-tier by nature).
        await call.audit("allow", reason, { event: "review.consumed", ...detail });
        return { kind: "forward", msg: withoutRequestState(call.msg), res, reason };
      }
      case "consumed":
        return this.refuse(
          call,
          `approval ${a.id} was already used (single use): replay refused`,
          refusal(
            403,
            `Approval ${a.id} was already used; each approval allows one call`,
            "approval replay",
            data,
          ),
          { event: "review.replay_refused", ...detail },
        );
      case "denied":
        return this.refuse(
          call,
          `denied by ${a.decidedBy} via ${a.decidedVia} (approval ${a.id})${a.reason ? `: ${a.reason}` : ""}`,
          refusal(403, `An approver denied this call (approval ${a.id})`, "denied by an approver", data),
          { event: "review.denied", ...detail },
        );
      default:
        return this.refuse(
          call,
          `approval ${a.id} expired without a decision`,
          refusal(
            403,
            `Review timed out: nobody approved this call in time (approval ${a.id})`,
            "review expired",
            {
              ...data,
              status: "expired",
            },
          ),
          { event: "review.expired", approvalId: a.id },
        );
    }
  }
}
