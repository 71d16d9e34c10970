/**
 * The audit records that are not a forwarded request's decision: the writer's own (retention,
 * backlog overflow), a policy or tool definition that changed, an action in the console, the
 * CLI or the built-in authorization server, an approval decided. Each is built here, so every
 * record has all its columns, and a record about no caller or no target says so with nulls
 * rather than by a field someone forgot. (The request path's decision record is built in
 * src/audit/requestRecord.ts.)
 */
import { randomBytes } from "node:crypto";
import type { AuditRecord } from "../store/types.js";
import type { RetentionResult } from "./retention.js";

type Decision = AuditRecord["decision"];

/** Who and what a record is about; what is left out is null (no caller, no server, no tool). */
export type RecordSubject = Partial<
  Pick<
    AuditRecord,
    | "principal"
    | "method"
    | "credentialId"
    | "server"
    | "rpcMethod"
    | "tool"
    | "decisionId"
    | "policyVersion"
    | "ruleIds"
  >
>;

/** A record of an event (not a forwarded request: no latency). */
export function eventRecord(
  environment: string,
  decision: Decision,
  reason: string,
  detail: Record<string, unknown> | null,
  subject: RecordSubject = {},
  at: Date = new Date(),
): AuditRecord {
  return {
    at,
    environment,
    principal: subject.principal ?? null,
    method: subject.method ?? null,
    credentialId: subject.credentialId ?? null,
    server: subject.server ?? null,
    rpcMethod: subject.rpcMethod ?? null,
    tool: subject.tool ?? null,
    decision,
    reason,
    latencyUs: 0,
    detail,
    ...(subject.decisionId === undefined ? {} : { decisionId: subject.decisionId }),
    ...(subject.policyVersion === undefined ? {} : { policyVersion: subject.policyVersion }),
    ...(subject.ruleIds === undefined ? {} : { ruleIds: subject.ruleIds }),
  };
}

/** A record the gateway makes about itself (audit retention, backlog overflow): no caller, no target. */
export function systemRecord(
  environment: string,
  decision: Decision,
  reason: string,
  detail: Record<string, unknown>,
  at: Date = new Date(),
): AuditRecord {
  return eventRecord(environment, decision, reason, detail, {}, at);
}

/** One record for the requests refused (503) unrecorded while the audit backlog was full. */
export function backlogOverflowed(environment: string, refused: number): AuditRecord {
  return systemRecord(
    environment,
    "deny",
    `audit backlog full: ${refused} requests refused (503) without a record of their own`,
    { event: "audit.backlog_full", refused },
  );
}

/** A retention run that purged records (src/audit/retention.ts), with the anchors it set. */
export function retentionPurged(
  environment: string,
  retentionDays: number,
  result: RetentionResult,
  at: Date = new Date(),
): AuditRecord {
  return systemRecord(
    environment,
    "allow",
    `retention: purged ${result.records} audit records older than ${retentionDays} days`,
    { event: "audit.retention", ...result },
    at,
  );
}

/** The policy in force changed (hot reload): which version, from which files. */
export function policyChanged(
  environment: string,
  policy: { version: string; ruleCount: number; sources: unknown },
  at: Date = new Date(),
): AuditRecord {
  return eventRecord(
    environment,
    "allow",
    `policy changed: version ${policy.version}, ${policy.ruleCount} rules`,
    { event: "policy.changed", sources: policy.sources },
    { policyVersion: policy.version },
    at,
  );
}

/** What a tool whose definition changed since it was pinned looks like (src/authz/toolCatalogue.ts). */
export interface ToolDefinitionChange {
  at: Date;
  server: string;
  tool: string;
  fields: readonly string[];
  blocked: boolean;
  pinnedHash: string;
  previousHash: string | null;
  currentHash: string;
}

/** A pinned tool's definition changed: flagged, or blocked until an operator accepts it. */
export function toolChanged(
  environment: string,
  change: ToolDefinitionChange,
  policyVersion: string,
): AuditRecord {
  const action = change.blocked ? "blocked until an operator accepts it" : "flagged";
  return eventRecord(
    environment,
    change.blocked ? "deny" : "allow",
    `tool definition changed since it was pinned (${change.fields.join(", ")}): ${action}`,
    {
      event: "tool.changed",
      fields: change.fields,
      pinnedHash: change.pinnedHash,
      previousHash: change.previousHash,
      currentHash: change.currentHash,
    },
    { server: change.server, rpcMethod: "tools/list", tool: change.tool, policyVersion },
    change.at,
  );
}

/** An administrative action (console, CLI): who did it and how, always allowed once recorded. */
export function adminRecord(
  environment: string,
  admin: { principal: string; method: string },
  reason: string,
  detail: Record<string, unknown>,
  subject: Omit<RecordSubject, "principal" | "method"> = {},
): AuditRecord {
  return eventRecord(environment, "allow", reason, detail, {
    ...subject,
    principal: admin.principal,
    method: admin.method,
  });
}

/**
 * The sign-in events (docs/audit.md, "Sign-ins"): the built-in authorization server's sign-in
 * (password or upstream OpenID Provider) and consent, and the console's sign-in and sign-out.
 */
export type SignInEvent =
  | "sign_in.succeeded"
  | "sign_in.failed"
  | "consent.granted"
  | "consent.denied"
  | "console.signed_in"
  | "console.sign_in_failed"
  | "console.signed_out";

/** The `method` of every sign-in record: `portcullis audit search --method sign_in` finds them all. */
export const SIGN_IN_METHOD = "sign_in";

/** What one sign-in decision is about; never a password, never an unknown typed username. */
export interface SignInFacts {
  event: SignInEvent;
  decision: "allow" | "deny";
  /** Precise reason (the user saw a generic one). */
  reason: string;
  /** The account's principal id (`oauth:<issuer>#<account id>`), when an account is known. */
  principal: string | null;
  /** The account's username, when an account is known (an unknown typed name is never kept). */
  username: string | null;
  /**
   * The keyed hash of the typed username (src/oauth/abuseLimits.ts accountRef, the value the
   * logs and throttling counters name): the only trace of a name that matches no account,
   * since people type passwords into the username field.
   */
  account?: string | null;
  /** The OAuth client the user signs in to: its id and the name shown to the user. */
  client: { id: string; name: string } | null;
  /** The socket's peer address. */
  address: string | null;
  /** More facts for this event (scopes of a consent, seconds to wait when throttled, …). */
  extra?: Record<string, unknown>;
}

/**
 * A decision id for an event outside the request path (shown to the user, searchable with
 * --decision-id). Never starting with `-`, which a command line would read as an option.
 */
export function newEventDecisionId(): string {
  for (;;) {
    const id = randomBytes(12).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** One sign-in, consent or sign-out decision (`method: "sign_in"`, `detail.event` says which). */
export function signInRecord(
  environment: string,
  facts: SignInFacts,
  decisionId: string = newEventDecisionId(),
): AuditRecord {
  return eventRecord(
    environment,
    facts.decision,
    facts.reason,
    {
      event: facts.event,
      username: facts.username,
      ...(facts.account === undefined ? {} : { account: facts.account }),
      clientId: facts.client?.id ?? null,
      clientName: facts.client?.name ?? null,
      address: facts.address,
      ...facts.extra,
    },
    { principal: facts.principal, method: SIGN_IN_METHOD, decisionId },
  );
}
