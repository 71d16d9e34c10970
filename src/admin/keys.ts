/**
 * API key administration shared by `portcullis keys …` and the console's API keys page:
 * create, rotate and revoke, each audited through the caller's {@link AdminAudit}. The
 * lifecycle rules themselves (format, lifetimes, overlap window) are ../authn/keyLifecycle.ts.
 */
import {
  checkKeyScopes,
  type IssuedKey,
  type IssueOptions,
  issueKey,
  type Rotation,
  rotateKey as rotate,
} from "../authn/keyLifecycle.js";
import type { Config } from "../config/schema.js";
import type { ApiKeyRecord, KeyOwner, Store } from "../store/types.js";
import type { AdminAudit } from "./actions.js";

/**
 * Issues a key (its secret is in the result, shown once) and records it. Its scopes must name
 * configured servers, and tools those servers are known to have (checkKeyScopes): a misspelt
 * scope is refused (KeyInputError) before anything is stored.
 */
export async function createKey(
  store: Store,
  secret: Buffer,
  config: Config,
  options: IssueOptions,
  audit: AdminAudit,
): Promise<IssuedKey> {
  let warnings: string[] = [];
  if (options.scopes !== undefined && options.scopes.length > 0) {
    const known = new Map<string, string[]>();
    for (const pin of await store.listToolPins()) {
      const tools = known.get(pin.server);
      if (tools === undefined) known.set(pin.server, [pin.tool]);
      else tools.push(pin.tool);
    }
    warnings = checkKeyScopes(options.scopes, Object.keys(config.servers), (s) => known.get(s) ?? null);
  }
  const issued = await issueKey(store, secret, config, options);
  await audit({ kind: "key.created", key: issued.record });
  return warnings.length > 0 ? { ...issued, warnings } : issued;
}

/** Issues a successor key; the old one stays valid for the overlap window. Recorded. */
export async function rotateKey(
  store: Store,
  secret: Buffer,
  config: Config,
  id: string,
  options: { overlapSeconds?: number; expires?: string; createdBy: KeyOwner },
  audit: AdminAudit,
): Promise<Rotation> {
  const rotation = await rotate(store, secret, config, id, options);
  await audit({
    kind: "key.rotated",
    previousId: id,
    previousExpiresAt: rotation.oldExpiresAt,
    key: rotation.issued.record,
  });
  return rotation;
}

/**
 * Revokes a key from the next request on; undefined when there is no such key. Revoking a
 * revoked key changes nothing and records nothing. Returns the key as stored afterwards.
 */
export async function revokeKey(
  store: Store,
  id: string,
  audit: AdminAudit,
): Promise<{ key: ApiKeyRecord; revokedNow: boolean } | undefined> {
  const existing = await store.getKey(id);
  if (existing === undefined) return undefined;
  if (existing.revokedAt !== null) return { key: existing, revokedNow: false };
  await store.revokeKey(id, new Date());
  await audit({ kind: "key.revoked", key: existing });
  return { key: (await store.getKey(id)) ?? existing, revokedNow: true };
}
