/**
 * Separation of duties (NIST SP 800-53 AC-5): a held call is never approved by its caller, nor
 * by the owner of the caller's credential — whoever created the API key saw its secret and can
 * call with it, so approving a call made with it is approving one's own call. The approver is
 * compared under every name they are known by (principal id; the bare OS account of an
 * `operator:` id; the OAuth subject of an `oauth:` id; the display name) with every name of the
 * caller (principal id — `key:<id>` for an API key, `oauth:<issuer>#<sub>` for an OAuth user,
 * the same for that user behind any client — the OAuth subject alone, the key id, the display
 * name) and of the key's owner (the principal id recorded at creation and their name).
 * Names compare after NFKC folding and case folding, so a look-alike name is the same name.
 * The approver's identity is never typed by them: the console's signed-in user, the CLI's OS
 * account (src/cli/auditTrail.ts). A signed link has no identity to compare: there,
 * separation of duties relies on who receives the webhook (docs/review.md).
 */
import type { ApprovalRecord, KeyOwner } from "../store/types.js";

function normalise(name: string): string {
  return name.normalize("NFKC").trim().toLowerCase();
}

/** A principal id and the shorter names it contains. */
function namesOf(principalId: string): string[] {
  const names = [principalId];
  const hash = principalId.lastIndexOf("#");
  if (principalId.startsWith("oauth:") && hash > 0) names.push(principalId.slice(hash + 1));
  if (principalId.startsWith("key:")) names.push(principalId.slice(4));
  if (principalId.startsWith("operator:")) names.push(principalId.slice(9));
  return names;
}

function identitySet(names: readonly string[]): Set<string> {
  const set = new Set(names.map(normalise));
  set.delete("");
  return set;
}

/** Every identity that names the caller of this approval. */
export function callerIdentities(a: Pick<ApprovalRecord, "principalId" | "principalName">): Set<string> {
  return identitySet([...namesOf(a.principalId), a.principalName]);
}

/** Every identity that names the owner of the caller's credential. */
export function ownerIdentities(owner: KeyOwner | null): Set<string> {
  return owner === null ? new Set() : identitySet([...namesOf(owner.principal), owner.name]);
}

export interface ApproverIdentity {
  /** As recorded: the console username, the CLI's OS account, or "signed link". */
  name: string;
  /** `oauth:<issuer>#<sub>` (console) or `operator:<account>` (CLI); null for a signed link. */
  principalId: string | null;
}

/** Why this approver may not decide this approval, or null when they may. */
export function conflictOfInterest(
  a: Pick<ApprovalRecord, "principalId" | "principalName">,
  owner: KeyOwner | null,
  approver: ApproverIdentity,
): "caller" | "owner" | null {
  const names = identitySet([
    approver.name,
    ...(approver.principalId === null ? [] : namesOf(approver.principalId)),
  ]);
  const meets = (identities: Set<string>) => [...names].some((n) => identities.has(n));
  if (meets(callerIdentities(a))) return "caller";
  if (meets(ownerIdentities(owner))) return "owner";
  return null;
}

/** True when `approver` is the caller under one of its names. */
export function isSelfApproval(
  a: Pick<ApprovalRecord, "principalId" | "principalName">,
  approver: string,
  approverPrincipalId: string | null = null,
): boolean {
  return conflictOfInterest(a, null, { name: approver, principalId: approverPrincipalId }) === "caller";
}
