/**
 * Tasks: a unit of agent work with an owner, a purpose, the servers and tools it may use, a
 * bounded lifetime, an optional call budget and an environment. A task token (an RFC 9068
 * JWT access token with a `task_id` claim and an RFC 8693 `act` claim) is the credential
 * bound to it; it is refused from the next request, on every replica, once the task ends.
 *
 * The types the rest of Portcullis sees. A task never holds more than its owner: its grants
 * are the intersection of what was asked, what the owner's credential covers and what the
 * policy allows at creation; the policy is still evaluated on every call.
 */
import type { Actor, AuthMethod, Principal, PrincipalKind } from "../core/principal.js";

/** Who a task acts for: the principal that created it, as the audit trail names it. */
export interface TaskOwner {
  /** Principal id: `key:<id>`, `oauth:<issuer>#<sub>`, `spiffe://…`. */
  id: string;
  kind: PrincipalKind;
  /** How the owner authenticated when the task was created. */
  method: AuthMethod;
  name: string;
  /** The owner's credential (API key id, token `jti`, …); its revocation ends the task's use. */
  credentialId: string | null;
}

/** Why a task ended. */
export type TaskEndReason = "ended" | "revoked" | "expired" | "budget" | "owner_revoked";

export interface Task {
  id: string;
  owner: TaskOwner;
  /** The agent or workload acting for the owner; nested for delegation chains. */
  actor: Actor | null;
  /** Free text, shown to approvers and in the audit trail. */
  purpose: string;
  /** What the task may reach: `server` (every tool) or `server:tool`, as key scopes are written. */
  grants: readonly string[];
  environment: string;
  createdAt: Date;
  expiresAt: Date;
  /** At most this many calls; null for no budget. */
  budget: number | null;
  callsUsed: number;
  endedAt: Date | null;
  endReason: TaskEndReason | null;
  /** Who ended it (`cli`, a console user, the agent via RFC 7009). */
  endedBy: string | null;
  /** The OAuth client that obtained the task token by token exchange, if any. */
  clientId: string | null;
}

/** What is asked for when a task is created (CLI, console, RFC 8693 token exchange). */
export interface TaskRequest {
  purpose: string;
  /** `server` or `server:tool` entries; narrowed to what the owner may reach. */
  grants: readonly string[];
  /** Default `tasks.defaultTtlSeconds` (900); more than `tasks.maxTtlSeconds` is refused. */
  ttlSeconds?: number;
  budget?: number | null;
  actor?: Actor | null;
  clientId?: string | null;
  /** The owner credential's own expiry: the task never outlives it. */
  ownerExpiresAt?: Date | null;
  /**
   * An OAuth owner's grant at the built-in authorization server (the subject token's
   * `grant_id`), kept with the task so its revocation can end the task's use.
   */
  ownerGrantId?: string | null;
}

/** `client_id` of a task token made outside any OAuth client (the CLI, the console). */
export const CLI_CLIENT_ID = "portcullis-cli";

/** How a task came to be, for the audit record of its creation. */
export type TaskOrigin = "cli" | "console" | "token_exchange";

export interface MintedTask {
  task: Task;
  /** The task token (compact JWS), shown once. */
  token: string;
}

/** A refusal to create a task: an OAuth error code, a client-safe description, and the audit reason. */
export interface MintRefusal {
  ok: false;
  error: "invalid_request" | "invalid_scope" | "invalid_target" | "access_denied";
  description: string;
  reason: string;
  decisionId: string;
}

export type MintResult = ({ ok: true; decisionId: string } & MintedTask) | MintRefusal;

/** Creates tasks: checks the request against the owner and the policy, stores it, signs its token. */
export interface TaskMinter {
  mint(owner: Principal, request: TaskRequest, origin: TaskOrigin): Promise<MintResult>;
}

/** Ends tasks (every replica refuses their tokens from the next request). */
export interface TaskEnder {
  /** False when there is no such live task. */
  end(id: string, reason: TaskEndReason, by: string): Promise<boolean>;
  /** The task id a task token names, when its signature verifies (any audience, even expired). */
  taskIdOf(token: string): Promise<string | null>;
}
