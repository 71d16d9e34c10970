/**
 * The Principal: the one typed result of authentication that everything downstream reads.
 * Nothing after authentication re-parses headers.
 */
import type { ScopeSet } from "./scope.js";

export type AuthMethod = "api_key" | "oauth" | "anonymous";
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
  /** OAuth scopes granted by the access token; null for other methods. */
  oauthScopes: ReadonlySet<string> | null;
  /** Group memberships asserted by the identity provider. */
  groups: readonly string[];
  /** When the credential was issued (API key created, token `iat`); policy reads its age. */
  issuedAt: Date | null;
  expiresAt: Date | null;
}
