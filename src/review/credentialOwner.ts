/**
 * Who owns the credential behind a held call, for separation of duties (./separationOfDuties.ts):
 * whoever created it and so saw its secret or chose its key — an API key's creator (or last
 * rotator), an OAuth machine client's creator (client credentials, RFC 6749 §4.4). An OAuth
 * user's own token has no owner but the user, who is already the caller.
 */
import { oauthDatabase } from "../oauth/database.js";
import { findMachineClient, isMachineClientId } from "../oauth/machineClients.js";
import type { ApprovalRecord, KeyOwner, Store } from "../store/types.js";

/**
 * The owner, null when there is none to compare (an OAuth user; a credential created before
 * owners were recorded), undefined when the credential the approval names is not in the store:
 * then no owner can be ruled out, and the approval is refused.
 */
export async function credentialOwner(
  store: Store,
  a: Pick<ApprovalRecord, "principalId" | "credentialId">,
): Promise<KeyOwner | null | undefined> {
  if (a.principalId.startsWith("key:")) {
    if (a.credentialId === null) return undefined;
    return (await store.getKey(a.credentialId))?.createdBy;
  }
  const hash = a.principalId.lastIndexOf("#");
  const sub = hash < 0 ? "" : a.principalId.slice(hash + 1);
  if (a.principalId.startsWith("oauth:") && isMachineClientId(sub))
    return (await findMachineClient(oauthDatabase(store), sub))?.createdBy;
  return null;
}
