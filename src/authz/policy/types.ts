/**
 * Policy-as-code at request time: the typed input every decision reads and the decision it
 * yields. Rules live in the operator's YAML files (see docs/policy.md); a rule's structured
 * `match` fields are compiled into set lookups and its optional `when` condition is a CEL
 * expression (https://cel.dev, evaluated with @bufbuild/cel) over this input.
 *
 * Combining: deny overrides review, review overrides allow; nothing matched means deny.
 */
import type { AuthMethod, PrincipalKind } from "../../core/principal.js";

export type Effect = "allow" | "deny" | "review";

/** MCP tool annotations (2025-06-18+): read-only, destructive, open-world hints. */
export type RiskTier = "read" | "write" | "destructive";

/** What the gateway knows about the target of a request. */
export interface ResourceFacts {
  server: string;
  /** What the method acts on. */
  kind: "tool" | "resource" | "prompt" | "server";
  /** Tool or prompt name, or resource URI; null for server-wide methods (lists, ping). */
  name: string | null;
  /** Tools only: derived from annotations, or pinned by the operator. Unknown tools: destructive. */
  tier: RiskTier | null;
  openWorld: boolean | null;
  annotations: Readonly<Record<string, unknown>>;
}

/**
 * The task a task token is bound to (src/tasks/), as a condition reads it (`task.id`,
 * `task.purpose`, `task.remainingCalls`, `task.ageSeconds`); null for every other credential.
 */
export interface TaskFacts {
  id: string;
  purpose: string;
  /** Calls left in the task's budget; null when it has no budget. */
  remainingCalls: number | null;
  /** Seconds since the task was created. */
  ageSeconds: number;
}

/**
 * RFC 8693 §4.1 `act`: who acts for the principal (`actor.sub`, `actor.chain`); null when no
 * one does (every credential but a task token).
 */
export interface ActorFacts {
  /** The current actor: the outermost `act` claim's `sub`. */
  sub: string;
  /** Every actor of the delegation chain, outermost (current) first. */
  chain: readonly string[];
}

export interface PolicyInput {
  principal: {
    id: string;
    kind: PrincipalKind;
    method: AuthMethod;
    groups: readonly string[];
    /** OAuth scopes granted to the token (empty for API keys). */
    scopes: readonly string[];
    tenant: string | null;
    environment: string;
    credentialId: string | null;
    /** Seconds since the credential was issued; null when unknown. */
    credentialAgeSeconds: number | null;
    /** Seconds until the credential expires; null when it never expires. */
    expiresInSeconds: number | null;
  };
  /** The task, when the credential is a task token; null otherwise. */
  task: TaskFacts | null;
  /** The actor acting for the principal, when the credential names one; null otherwise. */
  actor: ActorFacts | null;
  action: {
    /** The JSON-RPC method: tools/call, resources/read, prompts/get, tools/list, … */
    method: string;
  };
  resource: ResourceFacts;
  context: {
    /** tools/call arguments (or prompts/get arguments); {} otherwise. */
    arguments: Readonly<Record<string, unknown>>;
    time: Date;
    /** The gateway's environment (dev, test, prod, …). */
    environment: string;
    clientName: string | null;
    clientVersion: string | null;
    sourceAddress: string | null;
    protocolVersion: string | null;
  };
}

export interface PolicyDecision {
  effect: Effect;
  /** Ids of the rules that decided (all matching rules of the winning effect); empty = default deny. */
  ruleIds: string[];
  /** Precise reason for the audit log; never sent to the client. */
  reason: string;
  /** Identifies the policy set that decided (content hash), recorded in every audit record. */
  policyVersion: string;
  /** review only: how long the call may wait for an approver (seconds). */
  reviewTimeoutSeconds?: number;
}

/** One rule's part in a decision, for `portcullis policy explain`. */
export interface RuleTrace {
  id: string;
  file: string;
  line: number;
  effect: Effect;
  matched: boolean;
  /** Why it did or did not match: the first failing match field, or the condition's value. */
  why: string;
}

/** A compiled, immutable policy set. */
export interface CompiledPolicy {
  readonly version: string;
  readonly ruleCount: number;
  /** Files it was compiled from. */
  readonly sources: readonly string[];
  decide(input: PolicyInput): PolicyDecision;
  /** The effect `decide` would return, without collecting rule ids (cheaper: list filtering). */
  effect(input: PolicyInput): Effect;
  explain(input: PolicyInput): { decision: PolicyDecision; trace: RuleTrace[] };
}

/** A policy file that does not compile: `file:line: message`. */
export class PolicyError extends Error {
  override name = "PolicyError";
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}
