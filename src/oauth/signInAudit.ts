/**
 * Sign-ins and consents at the built-in authorization server as audit records (DESIGN rule 5:
 * every decision is audited), written through the gateway's chained writer like every other
 * record, so `portcullis audit verify` covers them. Before deciding, a sign-in asks whether
 * the trail can take its record ({@link SignInAudit.admit}): while the writer's backlog is full
 * the attempt is refused (503) unrecorded and only counted, as the request path does, so a
 * flood of attempts (throttled ones included, which are recorded one by one) never grows the
 * writer's memory beyond its bound (docs/audit.md, "Sign-ins").
 */
import { newEventDecisionId, type SignInFacts, signInRecord } from "../audit/records.js";
import type { AuditWriter } from "../audit/writer.js";
import { clientDisplayName } from "./clientDisplayName.js";
import type { OidcProvider } from "./oidcProvider.js";

/** The gateway's chained audit writer, as the authorization server uses it. */
export type AuthorizationServerAudit = Pick<AuditWriter, "record" | "accepting" | "noteUnrecorded">;

export interface SignInAudit {
  /** False (after counting the attempt as unrecorded) when the trail can take no more. */
  admit(): boolean;
  /** Records one decision; returns its decision id. */
  record(facts: SignInFacts): string;
  /** The principal id an account has at the gateway (as on its access tokens). */
  principal(accountId: string): string;
  /** The client of an authorization request: its id and display name. */
  client(
    provider: OidcProvider,
    clientId: string,
    redirectUri?: string,
  ): Promise<{ id: string; name: string }>;
}

export function signInAudit(
  audit: AuthorizationServerAudit,
  environment: string,
  issuer: string,
): SignInAudit {
  return {
    admit() {
      if (audit.accepting()) return true;
      audit.noteUnrecorded();
      return false;
    },
    record(facts) {
      const decisionId = newEventDecisionId();
      audit.record(signInRecord(environment, facts, decisionId));
      return decisionId;
    },
    principal: (accountId) => `oauth:${issuer}#${accountId}`,
    async client(provider, clientId, redirectUri) {
      const found = clientId === "" ? undefined : await provider.Client.find(clientId);
      return { id: clientId, name: clientDisplayName(found, redirectUri) };
    },
  };
}
