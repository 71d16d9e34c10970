/**
 * Is this error the store being unreachable (a fault that passes), or something else?
 *
 * An outage is what a retry can cure: the connection was refused, reset or terminated, or the
 * server said it is shutting down or starting (PostgreSQL SQLSTATE class 08 "connection
 * exception" and class 57 "operator intervention": 57P01 admin_shutdown, 57P02 crash_shutdown,
 * 57P03 cannot_connect_now; PostgreSQL docs, Appendix A), or SQLite is locked by another
 * process. The gateway answers such requests 503 with Retry-After and never lets them
 * decide that a credential is invalid: "cannot know" is not "unknown".
 */

/** Node socket errors that mean the server is not there (now). */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ENOTFOUND",
]);

/** SQLite: another process holds the lock longer than busy_timeout. */
const SQLITE_CODES = new Set(["SQLITE_BUSY", "SQLITE_LOCKED"]);

/** pg raises these as plain Errors, without a code, when a connection dies or cannot be had. */
const PG_MESSAGES = [
  "Connection terminated",
  "connection timeout",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "Client was closed and is not queryable",
  "the database system is",
];

export function isStoreOutage(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (NETWORK_CODES.has(code) || SQLITE_CODES.has(code)) return true;
      // SQLSTATE classes 08 (connection exception) and 57 (operator intervention).
      if (/^(08|57)[0-9A-Z]{3}$/.test(code)) return true;
    }
    if (PG_MESSAGES.some((m) => e instanceof Error && e.message.includes(m))) return true;
    // AggregateError from a dual-stack connect attempt: any member decides.
    if (e instanceof AggregateError && e.errors.some((x) => isStoreOutage(x))) return true;
  }
  return false;
}

/** A short, secret-free description for logs and the audit reason. */
export function outageReason(err: unknown): string {
  if (!(err instanceof Error)) return "store unreachable";
  const code = (err as { code?: unknown }).code;
  return `store unreachable (${typeof code === "string" ? code : err.message.slice(0, 120)})`;
}
