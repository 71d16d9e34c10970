/**
 * The Principal: the one typed result of authentication that everything downstream reads.
 * Nothing after authentication re-parses headers.
 */
import type { ScopeSet } from "../authz/scope.js";

export type AuthMethod = "api_key" | "anonymous";
export type PrincipalKind = "service" | "user" | "workload" | "anonymous";

export interface Principal {
  /** Stable identity of the caller, e.g. `key:<id>`; also the stdio isolation key. */
  id: string;
  kind: PrincipalKind;
  method: AuthMethod;
  /** Human-readable name (the key's name). */
  name: string;
  environment: string;
  credentialId: string | null;
  /** What this caller may reach; `null` means unrestricted (anonymous servers only). */
  scopes: ScopeSet | null;
  expiresAt: Date | null;
}
