/**
 * Audit records for the client_credentials grant (OAuth 2.1 §4.2) at the built-in
 * authorization server's token endpoint: every token issued to a machine client and every
 * refusal (unknown or revoked client, bad secret, replayed or mis-signed assertion, resource
 * or scope not allowed) becomes one record. The client got the generic RFC 6749 §5.2 code;
 * the record keeps oidc-provider's precise detail. Never a secret: client assertions and
 * secrets are not read here.
 */
import { eventRecord } from "../audit/records.js";
import type { AuditRecord } from "../store/types.js";
import type { OidcProvider } from "./oidcProvider.js";

interface TokenContext {
  oidc?: {
    params?: Record<string, unknown>;
    client?: { clientId: string };
    entities?: { ClientCredentials?: { jti?: string; scope?: string } };
  };
}

interface OidcError {
  error?: string;
  error_description?: string;
  error_detail?: string;
  message?: string;
}

/** The subject of a client assertion, unverified (it only names who claimed to call). */
function assertionSubject(assertion: unknown): string | null {
  if (typeof assertion !== "string") return null;
  try {
    const payload = JSON.parse(Buffer.from(assertion.split(".")[1] ?? "", "base64url").toString("utf8")) as {
      sub?: unknown;
    };
    return typeof payload.sub === "string" ? payload.sub.slice(0, 200) : null;
  } catch {
    return null;
  }
}

export function auditClientCredentials(
  provider: OidcProvider,
  issuer: string,
  environment: string,
  /** The gateway's audit writer (hash-chained): an unchained row would fail `audit verify`. */
  write: (record: AuditRecord) => void,
): void {
  /** The record of one client_credentials token request: the (claimed) client, the resource's server. */
  const tokenRecord = (
    ctx: TokenContext,
    clientId: string | null,
    decision: "allow" | "deny",
    reason: string,
    detail: Record<string, unknown>,
  ) => {
    const resource = ctx.oidc?.params?.resource;
    return eventRecord(environment, decision, reason, detail, {
      principal: clientId === null ? null : `oauth:${issuer}#${clientId}`,
      method: "oauth_client_credentials",
      credentialId: clientId,
      server: typeof resource === "string" ? (/\/mcp\/([^/]+)$/.exec(resource)?.[1] ?? null) : null,
    });
  };
  provider.on("grant.success", (...args: unknown[]) => {
    const ctx = args[0] as TokenContext;
    if (ctx.oidc?.params?.grant_type !== "client_credentials") return;
    const clientId = ctx.oidc.client?.clientId ?? null;
    const token = ctx.oidc.entities?.ClientCredentials;
    write(
      tokenRecord(ctx, clientId, "allow", "access token issued (client_credentials)", {
        resource: ctx.oidc.params.resource ?? null,
        scope: token?.scope ?? null,
      }),
    );
  });
  provider.on("grant.error", (...args: unknown[]) => {
    const ctx = args[0] as TokenContext;
    const err = (args[1] ?? {}) as OidcError;
    if (ctx.oidc?.params?.grant_type !== "client_credentials") return;
    const claimed =
      ctx.oidc.client?.clientId ??
      (typeof ctx.oidc.params.client_id === "string" ? ctx.oidc.params.client_id.slice(0, 200) : null) ??
      assertionSubject(ctx.oidc.params.client_assertion);
    write(
      tokenRecord(
        ctx,
        claimed,
        "deny",
        `token request refused (client_credentials): ${err.error ?? "error"}: ${err.error_detail ?? err.error_description ?? err.message ?? ""}`,
        { error: err.error ?? null, resource: ctx.oidc.params.resource ?? null },
      ),
    );
  });
}
