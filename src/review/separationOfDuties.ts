/**
 * Separation of duties: the caller of a held call can never approve it. The approver is
 * compared with every name the caller is known by: its principal id (`key:<id>` for an API
 * key; `oauth:<issuer>#<sub>` for an OAuth user, the same for that user behind any client),
 * the OAuth subject alone, the key id, and the display name (key name, e-mail or username).
 * A signed link has no identity to compare: there, separation of duties relies on who
 * receives the webhook (docs/review.md).
 */
import type { ApprovalRecord } from "../store/types.js";

function normalise(name: string): string {
  return name.normalize("NFKC").trim().toLowerCase();
}

/** Every identity that names the caller of this approval. */
export function callerIdentities(a: Pick<ApprovalRecord, "principalId" | "principalName">): Set<string> {
  const names = new Set<string>([normalise(a.principalId), normalise(a.principalName)]);
  const hash = a.principalId.lastIndexOf("#");
  if (a.principalId.startsWith("oauth:") && hash > 0) names.add(normalise(a.principalId.slice(hash + 1)));
  if (a.principalId.startsWith("key:")) names.add(normalise(a.principalId.slice(4)));
  names.delete("");
  return names;
}

/** True when `approver` is the caller under one of its names. */
export function isSelfApproval(
  a: Pick<ApprovalRecord, "principalId" | "principalName">,
  approver: string,
  approverPrincipalId: string | null = null,
): boolean {
  const names = callerIdentities(a);
  if (approverPrincipalId !== null && normalise(approverPrincipalId) === normalise(a.principalId))
    return true;
  return names.has(normalise(approver));
}
