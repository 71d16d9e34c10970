/**
 * The console's audit search: the newest records (up to a scan limit) filtered by decision,
 * principal, server, tool and free text in the reason, and the audit trail's verdict checked
 * against the keys the gateway's own server secret vouches for (never merely those the store
 * holds: docs/audit.md). `portcullis audit search` queries the store directly (AuditQuery).
 */
import { serverSecretTrust } from "../audit/trust.js";
import { type VerifyReport, verifyAuditLog } from "../audit/verify.js";
import type { Store, StoredAuditRecord } from "../store/types.js";

export interface AuditSearch {
  /** "allow", "review", "deny" or "" for any. */
  decision: string;
  /** Part of the principal, any case; "" for any. */
  principal: string;
  /** Exact server; "" for any. */
  server: string;
  /** Exact tool; "" for any. */
  tool: string;
  /** Part of the reason, any case; "" for any. */
  text: string;
}

export interface AuditSearchResult {
  found: StoredAuditRecord[];
  /** How many records were scanned. */
  scanned: number;
  verdict: VerifyReport;
}

export async function searchAudit(
  store: Store,
  secret: Buffer,
  search: AuditSearch,
  opts: { scan: number; limit: number },
): Promise<AuditSearchResult> {
  const all = await store.listAudit({ limit: opts.scan });
  const has = (v: string | null | undefined, s: string) =>
    s === "" || (v ?? "").toLowerCase().includes(s.toLowerCase());
  const found = all
    .filter(
      (r) =>
        (search.decision === "" || r.decision === search.decision) &&
        has(r.principal, search.principal) &&
        (search.server === "" || r.server === search.server) &&
        (search.tool === "" || r.tool === search.tool) &&
        has(r.reason, search.text),
    )
    .slice(0, opts.limit);
  const trust = serverSecretTrust(await store.listAuditSigningKeys(), secret);
  const verdict = await verifyAuditLog(store, { trust });
  return { found, scanned: all.length, verdict };
}
