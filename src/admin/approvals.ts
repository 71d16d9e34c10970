/**
 * Held calls as approvers see them, in the CLI (`portcullis approvals list --pending`) and in
 * the console's Approvals page: a pending approval past its deadline is no longer pending
 * (the gateway records it as expired), so neither face offers it for a decision.
 */
import type { ApprovalRecord, Store } from "../store/types.js";

/** Approvals still waiting for a decision and not yet past their deadline, newest first. */
export async function pendingApprovals(
  store: Store,
  limit: number,
  now = Date.now(),
): Promise<ApprovalRecord[]> {
  return (await store.listApprovals({ status: "pending", limit })).filter((a) => a.expiresAt.getTime() > now);
}
