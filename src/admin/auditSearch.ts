/**
 * The console's audit search: one page of records filtered by decision, principal (part of the
 * principal id, or of a local user's name), server, tool and text in the reason, paged by the
 * store's sequence number (keyset pagination: a page is "the `size` records before seq N" or
 * "after seq N", so paging stays one indexed query however deep it goes and never skips or
 * repeats a record while new ones arrive), and the audit trail's verdict checked against the
 * keys the gateway's own server secret vouches for (never merely those the store holds:
 * docs/audit.md). `portcullis audit search` queries the store directly (AuditQuery).
 */
import { serverSecretTrust } from "../audit/trust.js";
import { type VerifyReport, verifyAuditLog } from "../audit/verify.js";
import type { AuditQuery, Store, StoredAuditRecord } from "../store/types.js";
import { listUsers } from "./users.js";

export interface AuditSearch {
  /** "allow", "review", "deny" or "" for any. */
  decision: string;
  /** Part of the principal or of a local user's name, any case; "" for any. */
  principal: string;
  /** Exact server; "" for any. */
  server: string;
  /** Exact tool; "" for any. */
  tool: string;
  /** Part of the reason, any case; "" for any. */
  text: string;
}

/** Where a page starts: the newest records, those older than a seq, or those newer than one. */
export type AuditCursor = { before: number } | { after: number } | null;

export interface AuditPage {
  /** Newest first. */
  found: StoredAuditRecord[];
  /** The cursors of the adjacent pages, null when there is none. */
  older: number | null;
  newer: number | null;
  verdict: VerifyReport;
}

/** Most records one page may hold. */
export const MAX_AUDIT_PAGE = 200;

export async function searchAudit(
  store: Store,
  secret: Buffer,
  search: AuditSearch,
  opts: { cursor: AuditCursor; size: number },
): Promise<AuditPage> {
  const size = Math.max(1, Math.min(MAX_AUDIT_PAGE, Math.floor(opts.size)));
  const query: AuditQuery = { limit: size + 1 };
  if (search.decision === "allow" || search.decision === "deny" || search.decision === "review")
    query.decision = search.decision;
  if (search.server !== "") query.server = search.server;
  if (search.tool !== "") query.tool = search.tool;
  if (search.text !== "") query.reasonContains = search.text;
  if (search.principal !== "") {
    // A person is found by name too: their principal ends in `#<user id>`.
    const needle = search.principal.toLowerCase();
    const named = (await listUsers(store)).filter((u) => u.username.toLowerCase().includes(needle));
    query.principalContains = [search.principal, ...named.map((u) => `#${u.id}`)];
  }
  const cursor = opts.cursor;
  let found: StoredAuditRecord[];
  let older: number | null = null;
  let newer: number | null = null;
  if (cursor !== null && "after" in cursor) {
    const rows = await store.searchAudit({ ...query, afterSeq: cursor.after, order: "asc" });
    const more = rows.length > size;
    found = rows.slice(0, size).reverse();
    newer = more ? (found[0]?.seq ?? null) : null;
    older = found.at(-1)?.seq ?? cursor.after + 1;
  } else {
    const rows = await store.searchAudit({
      ...query,
      ...(cursor === null ? {} : { beforeSeq: cursor.before }),
      order: "desc",
    });
    found = rows.slice(0, size);
    older = rows.length > size ? (found.at(-1)?.seq ?? null) : null;
    newer = cursor === null ? null : (found[0]?.seq ?? cursor.before - 1);
  }
  const trust = serverSecretTrust(await store.listAuditSigningKeys(), secret);
  const verdict = await verifyAuditLog(store, { trust });
  return { found, older, newer, verdict };
}

/**
 * One record by its store sequence number, or every record of a decision id (a review and
 * its outcome share one), oldest first.
 */
export async function auditRecordsOf(store: Store, id: string): Promise<StoredAuditRecord[]> {
  if (/^[1-9][0-9]{0,15}$/.test(id)) {
    const seq = Number(id);
    const [r] = await store.searchAudit({ afterSeq: seq - 1, order: "asc", limit: 1 });
    return r?.seq === seq ? [r] : [];
  }
  return (await store.searchAudit({ decisionId: id.slice(0, 200), limit: 50 })).reverse();
}
