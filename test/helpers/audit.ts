/**
 * The audit trail a running test gateway wrote, read straight from its store: the other half
 * of every refusal test (the refused call left a deny record and no allow record).
 */
import { openStore } from "../../src/store/open.js";
import type { AuditQuery, StoredAuditRecord } from "../../src/store/types.js";
import type { RunningGateway } from "./gateway.js";

/** The store spec of a gateway started by `startGateway` on its embedded default (SQLite). */
export function storeOf(gw: Pick<RunningGateway, "dir">): string {
  return `${gw.dir}/data/portcullis.db`;
}

/** Audit records matching `query`, oldest first unless `query.order` says otherwise. */
export async function auditRecords(
  gw: Pick<RunningGateway, "dir">,
  query: AuditQuery = {},
): Promise<StoredAuditRecord[]> {
  const store = await openStore(storeOf(gw));
  try {
    return await store.searchAudit({ limit: 10_000, order: "asc", ...query });
  } finally {
    await store.close();
  }
}
