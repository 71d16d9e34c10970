/**
 * Audit records of enterprise-managed authorization (./idJag.ts), one per token request with
 * the jwt-bearer grant (DESIGN rule 5): `allow` when an access token was issued, `deny` with
 * the precise reason otherwise (bad `typ`, untrusted issuer, signature, `aud`, replayed `jti`,
 * mismatched `client_id`, resource or scope not allowed, client authentication failed, …);
 * the client got only the RFC 6749 §5.2 code. Method `oauth_id_jag`; `detail.event` is
 * `id_jag.redeemed` or `id_jag.refused`. The assertion itself is never recorded (MCP
 * "Enterprise-Managed Authorization" §7.4.2), only its issuer, subject, client and a hash of
 * its `jti`.
 */
import { createHash } from "node:crypto";
import { eventRecord, newEventDecisionId } from "../audit/records.js";
import type { AuditRecord } from "../store/types.js";
import { federatedAccountId } from "./federatedSignIn.js";
import type { IdJagClaims } from "./idJagVerification.js";
import type { OidcProvider } from "./oidcProvider.js";

export const ID_JAG_METHOD = "oauth_id_jag";
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const GRANT_NOT_ALLOWED = "requested grant type is not allowed for this client";

/** The gateway's chained audit writer. */
export interface IdJagAuditWriter {
  record(record: AuditRecord): void;
}

interface RequestContext {
  oidc?: { params?: Record<string, unknown>; client?: { clientId: string } };
}

interface OidcError {
  error?: string;
  error_description?: string;
  error_detail?: string;
  message?: string;
}

export interface IdJagAudit {
  /** Remembers the verified claims of this request, for the refusal record if a later check fails. */
  noteAssertion(ctx: object, claims: IdJagClaims): void;
  issued(
    ctx: object,
    facts: { claims: IdJagClaims; accountId: string; resource: string; scope: string },
  ): void;
  /** Records every refusal of the grant (including client authentication failures). */
  listen(provider: OidcProvider): void;
}

const serverOf = (resource: unknown): string | null =>
  typeof resource === "string" ? (/\/mcp\/([^/]+)$/.exec(resource)?.[1] ?? null) : null;

const jtiHash = (claims: IdJagClaims) =>
  createHash("sha256").update(`${claims.issuer}\n${claims.jti}`).digest("base64url").slice(0, 22);

function assertionFacts(claims: IdJagClaims): Record<string, unknown> {
  return {
    idp: claims.issuer,
    subject: claims.subject,
    assertionClientId: claims.clientId,
    jtiHash: jtiHash(claims),
    assertionResource: claims.resource,
    assertionScope: claims.scopes?.join(" ") ?? null,
    assertionExpiresAt: new Date(claims.expiresAt * 1000).toISOString(),
  };
}

export function auditIdJag(writer: IdJagAuditWriter, environment: string, issuer: string): IdJagAudit {
  const noted = new WeakMap<object, IdJagClaims>();
  const principalOf = (accountId: string) => `oauth:${issuer}#${accountId}`;
  return {
    noteAssertion(ctx, claims) {
      noted.set(ctx, claims);
    },
    issued(ctx, { claims, accountId, resource, scope }) {
      const clientId = (ctx as RequestContext).oidc?.client?.clientId ?? null;
      writer.record(
        eventRecord(
          environment,
          "allow",
          `access token issued for an ID-JAG from ${claims.issuer} (jwt-bearer)`,
          { event: "id_jag.redeemed", clientId, resource, scope, ...assertionFacts(claims) },
          {
            principal: principalOf(accountId),
            method: ID_JAG_METHOD,
            credentialId: clientId,
            server: serverOf(resource),
            decisionId: newEventDecisionId(),
          },
        ),
      );
    },
    listen(provider) {
      provider.on("grant.error", (...args: unknown[]) => {
        const ctx = (args[0] ?? {}) as RequestContext;
        const err: OidcError = { ...((args[1] ?? {}) as OidcError) };
        const params = ctx.oidc?.params;
        if (params?.grant_type !== JWT_BEARER_GRANT) return;
        // oidc-provider's refusal of a client not registered for the grant (put on the wire as
        // unauthorized_client by ./unauthorizedClient.ts): only machine clients may redeem.
        if (err.error === "invalid_request" && err.error_description === GRANT_NOT_ALLOWED) {
          err.error = "unauthorized_client";
          err.error_detail = "only machine clients (portcullis clients create) may redeem ID-JAGs";
        }
        const claims = noted.get(ctx);
        const clientId =
          ctx.oidc?.client?.clientId ??
          (typeof params.client_id === "string" ? params.client_id.slice(0, 200) : null);
        const resource = params.resource ?? claims?.resource ?? null;
        writer.record(
          eventRecord(
            environment,
            "deny",
            `ID-JAG refused (jwt-bearer): ${err.error ?? "error"}: ${err.error_detail ?? err.error_description ?? err.message ?? ""}`,
            {
              event: "id_jag.refused",
              error: err.error ?? null,
              clientId,
              resource,
              ...(claims === undefined ? {} : assertionFacts(claims)),
            },
            {
              principal:
                claims === undefined
                  ? null
                  : principalOf(federatedAccountId({ issuer: claims.issuer, subject: claims.subject })),
              method: ID_JAG_METHOD,
              credentialId: clientId,
              server: serverOf(resource),
              decisionId: newEventDecisionId(),
            },
          ),
        );
      });
    },
  };
}
