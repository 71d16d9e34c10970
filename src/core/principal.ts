/**
 * The Principal: the one typed result of authentication that everything downstream reads.
 * Nothing after authentication re-parses headers.
 */
import type { ScopeSet } from "./scope.js";

/**
 * How the caller proved itself: an API key, an OAuth access token, a task token (a
 * short-lived credential bound to one task, src/tasks/), a SPIFFE JWT-SVID bearer token, or
 * a SPIFFE X.509-SVID client certificate over mutual TLS.
 */
export type AuthMethod = "api_key" | "oauth" | "task" | "jwt_svid" | "mtls" | "anonymous";
export type PrincipalKind = "service" | "user" | "workload" | "anonymous";

/**
 * RFC 8693 §4.1 `act`: who acts for the subject. A delegation chain nests: the outer actor is
 * the current one, `act.act` the one before it.
 */
export interface Actor {
  sub: string;
  act?: Actor;
}

/** The task a task token is bound to (src/tasks/), as the request path sees it. */
export interface TaskBinding {
  id: string;
  purpose: string;
  /** When the task was created; policy reads its age. */
  createdAt: Date;
  /** Calls left in the task's budget at authentication; null when it has no budget. */
  remainingCalls: number | null;
}

export interface Principal {
  /**
   * Stable identity of the caller, e.g. `key:<id>`, `oauth:<issuer>#<sub>`,
   * `spiffe://<trust domain>/<path>`; also the stdio isolation key. A task token's principal
   * is its owner's id: the task acts for its owner.
   */
  id: string;
  kind: PrincipalKind;
  method: AuthMethod;
  /** Human-readable name (the key's name). */
  name: string;
  environment: string;
  credentialId: string | null;
  /** What this caller may reach; `null` means unrestricted (anonymous servers only). */
  scopes: ScopeSet | null;
  /** OAuth scopes granted by the access token; null for other methods. */
  oauthScopes: ReadonlySet<string> | null;
  /** Group memberships asserted by the identity provider. */
  groups: readonly string[];
  /** When the credential was issued (API key created, token `iat`); policy reads its age. */
  issuedAt: Date | null;
  expiresAt: Date | null;
  /** The task a task token is bound to; absent for every other method. */
  task?: TaskBinding;
  /** RFC 8693 actor: the agent or workload acting for the principal (task tokens). */
  actor?: Actor;
}
