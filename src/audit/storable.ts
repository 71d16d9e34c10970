/**
 * An audit record in the form the store keeps byte for byte. The chain hashes the stored
 * columns (src/audit/chain.ts), so what is hashed must be exactly what PostgreSQL and SQLite
 * store and give back, and no value a caller chose may make the store refuse the row:
 *
 * - text: NUL becomes U+FFFD (PostgreSQL `text` refuses it), and so does an unpaired
 *   surrogate (UTF-8 cannot encode one: the drivers would store U+FFFD while the chain
 *   hashed the surrogate);
 * - the instant and the latency: finite integers within the `bigint` columns;
 * - `detail` and `rule_ids`: a plain JSON copy, or a marker when there is none.
 *
 * When the store still refuses a record written alone, {@link refusedRecord} is what the
 * writer stores instead: who and what are left out, the SHA-256 of the refused row and the
 * error are kept, so the chain shows that something was refused and can prove what.
 */
import { sha256Hex } from "../core/canonicalJson.js";
import type { AuditRecord } from "../store/types.js";
import { systemRecord } from "./records.js";

/** NUL and unpaired surrogates (in a `u` regexp, a pair is one code point and never matches). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what PostgreSQL refuses.
const UNSTORABLE = /[\u0000\p{Cs}]/gu;

export function storableText(text: string): string {
  return text.replace(UNSTORABLE, "\uFFFD");
}

function storableOrNull(text: string | null | undefined): string | null {
  return typeof text === "string" ? storableText(text) : null;
}

/** A JSON copy (so what is hashed is what is stored), or undefined when there is none. */
function jsonCopy<T>(value: T): T | undefined {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

function instant(at: Date): Date {
  return at instanceof Date && Number.isFinite(at.getTime()) ? at : new Date();
}

export function storableRecord(entry: AuditRecord): AuditRecord {
  const detail =
    entry.detail === null ? null : (jsonCopy(entry.detail) ?? { unrecorded: "detail is not JSON" });
  const ruleIds = entry.ruleIds === undefined || entry.ruleIds === null ? null : jsonCopy(entry.ruleIds);
  const latency = Math.round(entry.latencyUs);
  return {
    at: instant(entry.at),
    environment: storableText(String(entry.environment)),
    principal: storableOrNull(entry.principal),
    method: storableOrNull(entry.method),
    credentialId: storableOrNull(entry.credentialId),
    server: storableOrNull(entry.server),
    rpcMethod: storableOrNull(entry.rpcMethod),
    tool: storableOrNull(entry.tool),
    decision: entry.decision,
    reason: storableText(String(entry.reason)),
    latencyUs: Number.isFinite(latency) ? Math.min(Math.max(latency, 0), Number.MAX_SAFE_INTEGER) : 0,
    detail,
    decisionId: storableOrNull(entry.decisionId),
    policyVersion: storableOrNull(entry.policyVersion),
    ruleIds: Array.isArray(ruleIds) ? ruleIds.map((r) => storableText(String(r))) : null,
  };
}

/** What is stored in place of a record the store refused although it answered. */
export function refusedRecord(entry: AuditRecord, refusedRow: string, error: string): AuditRecord {
  return systemRecord(
    typeof entry.environment === "string" ? storableText(entry.environment) : "-",
    entry.decision === "allow" || entry.decision === "review" ? entry.decision : "deny",
    "audit record refused by the store; kept as its hash",
    {
      unrecorded: "refused by the store",
      sha256: sha256Hex(refusedRow),
      error: storableText(error.slice(0, 500)),
    },
    instant(entry.at),
  );
}
