/**
 * Webhook notification of a new approval: a JSON payload (one object a Slack or Teams
 * workflow can consume) POSTed to `review.webhook.url`, signed with HMAC-SHA-256 under the
 * configured webhook secret, in the header
 *
 *   `Portcullis-Signature: t=<epoch seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>`
 *
 * so the receiver can check both origin and freshness. The payload carries signed, expiring
 * approve/deny links (./signedLinks.ts). Delivery is retried twice; a failure is logged and
 * never blocks the held call (approvers can still use the console or the CLI).
 */
import { createHmac } from "node:crypto";
import type { Logger } from "pino";
import type { ApprovalRecord } from "../store/types.js";

export const SIGNATURE_HEADER = "portcullis-signature";
const ATTEMPTS = 3;
const TIMEOUT_MS = 5_000;

export interface ApprovalNotification {
  type: "approval.requested";
  id: string;
  environment: string;
  caller: { id: string; name: string; method: string };
  server: string;
  method: string;
  tool: string;
  /** Secrets masked, large values hashed. */
  arguments: Record<string, unknown>;
  argumentsHash: string;
  createdAt: string;
  expiresAt: string;
  approveUrl: string;
  denyUrl: string;
  /** A one-line summary for chat channels. */
  text: string;
}

export function notificationOf(a: ApprovalRecord, approveUrl: string, denyUrl: string): ApprovalNotification {
  return {
    type: "approval.requested",
    id: a.id,
    environment: a.environment,
    caller: { id: a.principalId, name: a.principalName, method: a.principalMethod },
    server: a.server,
    method: a.rpcMethod,
    tool: a.tool,
    arguments: a.argumentsSummary,
    argumentsHash: a.argumentsHash,
    createdAt: a.createdAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    approveUrl,
    denyUrl,
    text: `${a.principalName} asks to run ${a.tool} on ${a.server} (${a.environment}); approval ${a.id} expires ${a.expiresAt.toISOString()}`,
  };
}

export function webhookSignature(secret: string, timestamp: number, body: string): string {
  const v1 = createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex");
  return `t=${timestamp},v1=${v1}`;
}

export class ApprovalWebhook {
  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly log: Logger,
  ) {}

  /** Fire and forget: resolves once delivered or given up. */
  async send(notification: ApprovalNotification): Promise<boolean> {
    const body = JSON.stringify(notification);
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const t = Math.floor(Date.now() / 1000);
      try {
        const res = await fetch(this.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "portcullis-review-webhook",
            [SIGNATURE_HEADER]: webhookSignature(this.secret, t, body),
          },
          body,
          redirect: "error",
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        await res.body?.cancel().catch(() => {});
        if (res.ok) return true;
        this.log.warn(
          { approvalId: notification.id, status: res.status, attempt },
          "review webhook refused the notification",
        );
      } catch (err) {
        this.log.warn({ approvalId: notification.id, err, attempt }, "review webhook delivery failed");
      }
      if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * attempt));
    }
    this.log.error(
      { approvalId: notification.id },
      "review webhook not delivered; approvers can use the console or the CLI",
    );
    return false;
  }
}
