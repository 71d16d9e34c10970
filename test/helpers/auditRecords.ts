/**
 * Reading a test gateway's audit trail straight from its store (the embedded SQLite file),
 * waiting until the records a test expects were flushed by the audit writer.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord } from "../../src/store/types.js";
import type { RunningGateway } from "./gateway.js";

/** The newest `limit` records of the gateway's audit trail. */
export async function auditRecords(gw: RunningGateway, limit = 1000): Promise<AuditRecord[]> {
  const store = await openStore(`${gw.dir}/data/portcullis.db`);
  try {
    return await store.listAudit({ limit });
  } finally {
    await store.close();
  }
}

/** Waits (up to 15 s, then fails) until some record satisfies `found`; returns the trail then. */
export async function auditRecordsUntil(
  gw: RunningGateway,
  found: (r: AuditRecord) => boolean,
): Promise<AuditRecord[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const records = await auditRecords(gw);
    if (records.some(found)) return records;
    if (Date.now() > deadline) throw new Error("the expected audit record was never written");
    await sleep(100);
  }
}
