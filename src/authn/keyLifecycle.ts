/**
 * Issuing, rotating and revoking API keys. A key is shown once, at creation, and stored
 * only as HMAC-SHA-256 under the server secret. Expiry is mandatory and bounded.
 */

import type { Config } from "../config/schema.js";
import { allowsTool, compileScopes, validateScopePattern } from "../core/scope.js";
import type { ApiKeyRecord, KeyOwner, Store } from "../store/types.js";
import { mintKey } from "./keyFormat.js";
import { hashKey } from "./keyring.js";

export class KeyInputError extends Error {
  override name = "KeyInputError";
}

const DAY_MS = 86_400_000;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS };

/** Parses `90d`, `12h`, `30m`, `2w` or an ISO-8601 instant into an expiry date. */
export function parseExpiry(input: string, now: number = Date.now()): Date {
  const m = /^(\d+)([smhdw])$/.exec(input.trim());
  if (m) return new Date(now + Number(m[1]) * (UNITS[m[2] as string] as number));
  const at = Date.parse(input);
  if (Number.isNaN(at))
    throw new KeyInputError(`--expires '${input}': use a duration like 90d, 12h, 2w or an ISO date`);
  return new Date(at);
}

export interface IssueOptions {
  name: string;
  environment?: string;
  scopes?: string[];
  expires?: string;
  rotatedFrom?: string | null;
  /** Who creates it (sees its secret): recorded, and never its caller's approver. */
  createdBy?: KeyOwner | null;
}

export interface IssuedKey {
  record: ApiKeyRecord;
  /** The secret key string: shown once, never stored. */
  key: string;
  /** What could not be checked about its scopes (see checkKeyScopes). */
  warnings?: string[];
}

export async function issueKey(
  store: Store,
  secret: Buffer,
  config: Config,
  opts: IssueOptions,
): Promise<IssuedKey> {
  const name = opts.name.trim();
  if (!name || name.length > 100) throw new KeyInputError("--name is required (1-100 characters)");
  const environment = opts.environment ?? config.environment;
  if (!/^[a-z][a-z0-9]{0,15}$/.test(environment)) {
    throw new KeyInputError(`--env '${environment}': must be a lowercase word of 1-16 letters/digits`);
  }
  const scopes = opts.scopes && opts.scopes.length > 0 ? opts.scopes : Object.keys(config.servers);
  if (scopes.length === 0)
    throw new KeyInputError("--servers is required: no servers are configured to default to");
  for (const s of scopes) {
    const problem = validateScopePattern(s);
    if (problem) throw new KeyInputError(`--servers: ${problem}`);
  }
  const now = Date.now();
  const expiresAt = parseExpiry(opts.expires ?? `${config.keys.defaultTtlDays * 24 * 3600}s`, now);
  if (expiresAt.getTime() <= now) throw new KeyInputError("--expires must be in the future");
  if (expiresAt.getTime() > now + config.keys.maxTtlDays * DAY_MS) {
    throw new KeyInputError(
      `--expires exceeds the maximum key lifetime of ${config.keys.maxTtlDays} days (keys.maxTtlDays)`,
    );
  }
  const minted = mintKey(environment);
  const record: ApiKeyRecord = {
    id: minted.id,
    name,
    environment,
    hash: hashKey(secret, minted.key),
    scopes,
    createdAt: new Date(now),
    expiresAt,
    revokedAt: null,
    rotatedFrom: opts.rotatedFrom ?? null,
    createdBy: opts.createdBy ?? null,
    lastUsedAt: null,
    useCount: 0,
  };
  await store.insertKey(record);
  return { record, key: minted.key };
}

/**
 * Checks a new key's scopes against what the gateway serves, so a misspelt scope is refused
 * at creation rather than leaving a key that can do nothing: every server a scope names must
 * be configured, and a tool it names must be one the server is known to have (`toolsOf`:
 * the tools the gateway has seen it list, null while it has listed none). Throws a
 * KeyInputError naming the scope, what exists and the closest spelling; returns warnings
 * for what cannot be checked yet (tools not listed yet, a prefix matching no known tool).
 */
export function checkKeyScopes(
  scopes: readonly string[],
  servers: readonly string[],
  toolsOf: (server: string) => readonly string[] | null,
): string[] {
  const warnings: string[] = [];
  for (const scope of scopes) {
    const problem = validateScopePattern(scope);
    if (problem) throw new KeyInputError(`--servers: ${problem}`);
    if (scope === "*") continue;
    const colon = scope.indexOf(":");
    const server = colon < 0 ? scope : scope.slice(0, colon);
    const tool = colon < 0 ? null : scope.slice(colon + 1);
    if (!servers.includes(server)) {
      throw new KeyInputError(
        `--servers '${scope}': no server named '${server}' is configured${suggestion(server, servers)}; configured servers: ${servers.join(", ") || "(none)"}`,
      );
    }
    if (tool === null || tool === "*") continue;
    const tools = toolsOf(server);
    if (tools === null) {
      warnings.push(
        `'${scope}': the tools of ${server} are not known yet (the gateway has not listed them), so '${tool}' is unchecked`,
      );
      continue;
    }
    if (tool.includes("*")) {
      const pattern = compileScopes([scope]);
      if (!tools.some((t) => allowsTool(pattern, server, t)))
        warnings.push(`'${scope}' matches none of the tools ${server} is known to have: ${listed(tools)}`);
      continue;
    }
    if (!tools.includes(tool)) {
      throw new KeyInputError(
        `--servers '${scope}': server ${server} has no tool '${tool}'${suggestion(tool, tools)}; its tools: ${listed(tools)}`,
      );
    }
  }
  return warnings;
}

const LISTED = 20;

function listed(names: readonly string[]): string {
  return names.length <= LISTED
    ? names.join(", ")
    : `${names.slice(0, LISTED).join(", ")}, … (${names.length} in all)`;
}

/** ` (did you mean 'x'?)` for the closest name within a few edits, else nothing. */
function suggestion(wrong: string, names: readonly string[]): string {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(wrong.length / 3)) + 1;
  for (const name of names) {
    const d = editDistance(wrong.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best === null ? "" : ` (did you mean '${best}'?)`;
}

/** Levenshtein distance (insertions, deletions, substitutions), two rows of memory. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = row;
  }
  return prev[b.length] as number;
}

export interface Rotation {
  issued: IssuedKey;
  /** When the old key stops working. */
  oldExpiresAt: Date;
  /** The successor expires when the old key was due to (no `expires` was given). */
  keptExpiry: boolean;
}

/**
 * Issues a successor with the same name, environment and scopes; the old key lives on only
 * for the overlap. The successor keeps the old key's expiry unless `expires` is given:
 * rotating a secret must not quietly extend the credential's lifetime.
 */
export async function rotateKey(
  store: Store,
  secret: Buffer,
  config: Config,
  id: string,
  opts: { overlapSeconds?: number; expires?: string; createdBy?: KeyOwner | null } = {},
): Promise<Rotation> {
  const old = await store.getKey(id);
  if (!old) throw new KeyInputError(`no key with id ${id}`);
  if (old.revokedAt) throw new KeyInputError(`key ${id} is revoked; create a new key instead`);
  if (old.expiresAt.getTime() <= Date.now())
    throw new KeyInputError(`key ${id} has expired; create a new key instead`);
  // One successor per key: a second rotation would leave several live keys from one.
  const successor = (await store.listKeys({ includeRevoked: true })).find((k) => k.rotatedFrom === old.id);
  if (successor)
    throw new KeyInputError(
      `key ${id} was already rotated to ${successor.id}; rotate ${successor.id} instead`,
    );
  const issued = await issueKey(store, secret, config, {
    name: old.name,
    environment: old.environment,
    scopes: old.scopes,
    expires: opts.expires ?? old.expiresAt.toISOString(),
    rotatedFrom: old.id,
    // The successor's secret is shown to whoever rotates: they own it from now on.
    createdBy: opts.createdBy ?? null,
  });
  const overlap = (opts.overlapSeconds ?? config.keys.rotationOverlapSeconds) * 1000;
  const end = new Date(Math.min(old.expiresAt.getTime(), Date.now() + overlap));
  await store.setKeyExpiry(old.id, end);
  return { issued, oldExpiresAt: end, keptExpiry: opts.expires === undefined };
}

/** The public view of a key (never the hash). */
export function describeKey(k: ApiKeyRecord, now: number = Date.now()): Record<string, unknown> {
  const status = k.revokedAt ? "revoked" : k.expiresAt.getTime() <= now ? "expired" : "active";
  return {
    id: k.id,
    name: k.name,
    environment: k.environment,
    scopes: k.scopes,
    status,
    createdAt: k.createdAt.toISOString(),
    expiresAt: k.expiresAt.toISOString(),
    revokedAt: k.revokedAt?.toISOString() ?? null,
    rotatedFrom: k.rotatedFrom,
    createdBy: k.createdBy?.principal ?? null,
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    useCount: k.useCount,
  };
}
