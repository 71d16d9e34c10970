/**
 * RFC 9396 (Rich Authorization Requests) §2 — the `authorization_details` type that carries a
 * task's details in an RFC 8693 token exchange (./tokenExchange.ts) and comes back in its
 * response (RFC 9396 §7):
 *
 *     { "type": "urn:portcullis:task", "purpose": "triage issue 42",
 *       "tools": ["search"], "lifetime_seconds": 900, "budget": 20,
 *       "locations": ["https://gateway.example.com/mcp/github"] }
 *
 * `purpose` is required; `tools` (names on the resource's server; absent = every tool the
 * owner may reach there), `lifetime_seconds`, `budget` and `locations` (RFC 9396 §2.2 common
 * field; if present, exactly the `resource`) are optional. Any other member is refused: in
 * particular nothing here can name an actor (`act` comes only from verified tokens).
 * Malformed details are `invalid_authorization_details` (RFC 9396 §5).
 */

export const TASK_DETAILS_TYPE = "urn:portcullis:task";

const MAX_PURPOSE = 500;
const MAX_TOOLS = 64;
const MAX_BUDGET = 1_000_000;
const MAX_LIFETIME = 30 * 24 * 3600;
/** A tool name as a grant can carry it: no wildcard (the task names exact tools). */
const TOOL_NAME = /^[^\s*:][^\s*]{0,127}$/;
const KNOWN = new Set(["type", "purpose", "tools", "lifetime_seconds", "budget", "locations"]);

export interface TaskDetails {
  purpose: string;
  /** Tool names on the resource's server; null for the whole server. */
  tools: readonly string[] | null;
  lifetimeSeconds: number | null;
  budget: number | null;
}

export type TaskDetailsResult = { ok: true; details: TaskDetails } | { ok: false; reason: string };

function positiveInteger(value: unknown, max: number): number | null | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) return null;
  return value;
}

/** Parses the `authorization_details` parameter: exactly one entry, of the task type. */
export function parseTaskDetails(raw: unknown, resource: string): TaskDetailsResult {
  if (typeof raw !== "string" || raw.length === 0)
    return { ok: false, reason: `authorization_details of type ${TASK_DETAILS_TYPE} is required` };
  if (raw.length > 16_384) return { ok: false, reason: "authorization_details is too large" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "authorization_details is not JSON" };
  }
  if (!Array.isArray(parsed) || parsed.length !== 1)
    return { ok: false, reason: "authorization_details must be an array of exactly one object" };
  const entry: unknown = parsed[0];
  if (typeof entry !== "object" || entry === null || Array.isArray(entry))
    return { ok: false, reason: "authorization_details entry must be an object" };
  const d = entry as Record<string, unknown>;
  if (d.type !== TASK_DETAILS_TYPE)
    return { ok: false, reason: `authorization_details type must be ${TASK_DETAILS_TYPE}` };
  const unknown = Object.keys(d).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0)
    return { ok: false, reason: `authorization_details has unknown member ${unknown[0]}` };
  if (typeof d.purpose !== "string" || d.purpose.trim() === "" || d.purpose.length > MAX_PURPOSE)
    return { ok: false, reason: `purpose must be a non-empty string of at most ${MAX_PURPOSE} characters` };
  let tools: string[] | null = null;
  if (d.tools !== undefined) {
    if (
      !Array.isArray(d.tools) ||
      d.tools.length === 0 ||
      d.tools.length > MAX_TOOLS ||
      !d.tools.every((t) => typeof t === "string" && TOOL_NAME.test(t))
    )
      return { ok: false, reason: `tools must be 1 to ${MAX_TOOLS} exact tool names` };
    tools = [...new Set(d.tools as string[])];
  }
  const lifetime = positiveInteger(d.lifetime_seconds, MAX_LIFETIME);
  if (lifetime === null) return { ok: false, reason: "lifetime_seconds must be a positive integer" };
  const budget = positiveInteger(d.budget, MAX_BUDGET);
  if (budget === null) return { ok: false, reason: `budget must be an integer from 1 to ${MAX_BUDGET}` };
  if (d.locations !== undefined) {
    if (!Array.isArray(d.locations) || d.locations.length !== 1 || d.locations[0] !== resource)
      return { ok: false, reason: "locations, when present, must be exactly the requested resource" };
  }
  return {
    ok: true,
    details: { purpose: d.purpose.trim(), tools, lifetimeSeconds: lifetime ?? null, budget: budget ?? null },
  };
}

/** The details as granted (RFC 9396 §7): what the token response carries back. */
export function grantedTaskDetails(
  resource: string,
  purpose: string,
  tools: readonly string[] | null,
  expiresAt: Date,
  budget: number | null,
): Record<string, unknown>[] {
  return [
    {
      type: TASK_DETAILS_TYPE,
      locations: [resource],
      purpose,
      ...(tools === null ? {} : { tools }),
      expires_at: Math.floor(expiresAt.getTime() / 1000),
      ...(budget === null ? {} : { budget }),
    },
  ];
}
