/**
 * An approver's decision, the same for every channel (console, CLI, signed webhook link):
 * refused when the approver is the caller or the owner of the caller's credential
 * (./separationOfDuties.ts, ./credentialOwner.ts), when the approval is
 * unknown, no longer pending, or past its deadline; otherwise one conditional store write,
 * announced on the change feed so the gateway holding the call hears of it at once, and one
 * audit record naming who decided, when and how.
 */
import { eventRecord } from "../audit/records.js";
import type { ApprovalChannel, ApprovalRecord, AuditRecord, Store } from "../store/types.js";
import { credentialOwner } from "./credentialOwner.js";
import { conflictOfInterest } from "./separationOfDuties.js";

/** How long an approved call may take to come back for it (a 2026-07-28 client's retry). */
export const APPROVED_USE_WINDOW_SECONDS = 300;

export interface Approver {
  /** Who, as recorded: the CLI's OS account, a console user, or "signed link". */
  name: string;
  /** The approver's own principal id when known: `oauth:…` (console), `operator:…` (CLI). */
  principalId?: string | null;
  via: ApprovalChannel;
}

export type DecideOutcome =
  | { ok: true; record: ApprovalRecord }
  | {
      ok: false;
      code: "unknown" | "self_approval" | "not_pending" | "expired";
      message: string;
      record: ApprovalRecord | null;
    };

export async function decideApproval(
  store: Store,
  id: string,
  decision: "approved" | "denied",
  approver: Approver,
  opts: { reason?: string | null; now?: Date; audit?: (record: AuditRecord) => void | Promise<void> } = {},
): Promise<DecideOutcome> {
  const now = opts.now ?? new Date();
  const existing = await store.getApproval(id);
  if (existing === undefined) {
    return { ok: false, code: "unknown", message: `no approval with id ${id}`, record: null };
  }
  const audit = async (decisionValue: "allow" | "deny", reason: string, event: string) => {
    await opts.audit?.(
      approvalAudit(existing, decisionValue, reason, { event, by: approver.name, via: approver.via }, now),
    );
  };
  const owner = await credentialOwner(store, existing);
  const conflict =
    owner === undefined
      ? "owner"
      : conflictOfInterest(existing, owner, {
          name: approver.name,
          principalId: approver.principalId ?? null,
        });
  if (conflict !== null) {
    const message =
      conflict === "caller"
        ? `${approver.name} is the caller of ${id}: the caller can never decide their own call`
        : owner === undefined
          ? `the credential behind ${id} is unknown: no one can be shown not to own it`
          : `${approver.name} created the credential behind ${id}: the owner of the caller's credential can never decide its calls`;
    const event = conflict === "caller" ? "review.self_approval_refused" : "review.owner_approval_refused";
    await audit("deny", `${conflict === "caller" ? "self" : "owner"}-approval refused: ${message}`, event);
    return { ok: false, code: "self_approval", message, record: existing };
  }
  if (existing.status !== "pending") {
    return {
      ok: false,
      code: "not_pending",
      message: `approval ${id} is ${existing.status}, not pending`,
      record: existing,
    };
  }
  if (existing.expiresAt.getTime() <= now.getTime()) {
    return {
      ok: false,
      code: "expired",
      message: `approval ${id} expired at ${existing.expiresAt.toISOString()}`,
      record: existing,
    };
  }
  const useBy = new Date(
    Math.max(existing.expiresAt.getTime(), now.getTime() + APPROVED_USE_WINDOW_SECONDS * 1000),
  );
  const result = await store.decideApproval(id, {
    decision,
    by: approver.name,
    via: approver.via,
    at: now,
    reason: opts.reason ?? null,
    ...(decision === "approved" ? { expiresAt: useBy } : {}),
  });
  if (result.outcome !== "decided" || result.record === null) {
    const status = result.record?.status ?? "unknown";
    return {
      ok: false,
      code: "not_pending",
      message: `approval ${id} is ${status}, not pending`,
      record: result.record,
    };
  }
  const verb = decision === "approved" ? "approved" : "denied";
  await audit(
    decision === "approved" ? "allow" : "deny",
    `approval ${id} ${verb} by ${approver.name} via ${approver.via}${opts.reason ? `: ${opts.reason}` : ""}`,
    `review.${verb}`,
  );
  return { ok: true, record: result.record };
}

/** One audit record about an approval (the call's caller, server, tool; the approval in detail). */
export function approvalAudit(
  a: ApprovalRecord,
  decision: "allow" | "deny" | "review",
  reason: string,
  detail: Record<string, unknown>,
  at: Date = new Date(),
): AuditRecord {
  return eventRecord(
    a.environment,
    decision,
    reason,
    { approvalId: a.id, argumentsHash: a.argumentsHash, ...detail },
    {
      principal: a.principalId,
      method: a.principalMethod,
      credentialId: a.credentialId,
      server: a.server,
      rpcMethod: a.rpcMethod,
      tool: a.tool,
      decisionId: a.decisionId,
      ruleIds: a.ruleIds,
      policyVersion: a.policyVersion,
    },
    at,
  );
}
