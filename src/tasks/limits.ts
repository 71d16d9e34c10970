/**
 * What a task request may ask for besides its grants: a purpose (free text shown to approvers
 * and in the audit trail: non-empty, bounded, printable), a lifetime (default
 * `tasks.defaultTtlSeconds`, never more than `tasks.maxTtlSeconds`: no task is unbounded) and
 * an optional call budget (a positive integer up to `tasks.maxBudget`). Refusals are RFC 6749
 * §5.2 `invalid_request` with the field named. Pure functions.
 */
import type { TasksConfig } from "../config/schema.js";

export type LimitsCheck =
  | { ok: true; purpose: string; ttlSeconds: number; budget: number | null }
  | { ok: false; error: "invalid_request"; reason: string };

/** C0/C1 control characters other than tab and newline. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

export function checkLimits(
  config: TasksConfig,
  asked: { purpose: unknown; ttlSeconds?: unknown; budget?: unknown },
): LimitsCheck {
  const purpose = typeof asked.purpose === "string" ? asked.purpose.trim() : "";
  if (purpose === "")
    return { ok: false, error: "invalid_request", reason: "purpose: a task needs a purpose" };
  if (purpose.length > config.maxPurposeLength)
    return {
      ok: false,
      error: "invalid_request",
      reason: `purpose: at most ${config.maxPurposeLength} characters (got ${purpose.length})`,
    };
  if (CONTROL.test(purpose))
    return { ok: false, error: "invalid_request", reason: "purpose: control characters are not allowed" };
  const ttl = asked.ttlSeconds ?? config.defaultTtlSeconds;
  if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl <= 0)
    return { ok: false, error: "invalid_request", reason: "ttl: a whole number of seconds above 0" };
  if (ttl > config.maxTtlSeconds)
    return {
      ok: false,
      error: "invalid_request",
      reason: `ttl: ${ttl}s is longer than tasks.maxTtlSeconds (${config.maxTtlSeconds}s)`,
    };
  const budget = asked.budget ?? null;
  if (budget !== null) {
    if (typeof budget !== "number" || !Number.isSafeInteger(budget) || budget <= 0)
      return { ok: false, error: "invalid_request", reason: "budget: a whole number of calls above 0" };
    if (budget > config.maxBudget)
      return {
        ok: false,
        error: "invalid_request",
        reason: `budget: ${budget} calls is more than tasks.maxBudget (${config.maxBudget})`,
      };
  }
  return { ok: true, purpose, ttlSeconds: ttl, budget };
}
