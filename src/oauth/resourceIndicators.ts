/**
 * RFC 8707 resource indicators for the built-in authorization server: every access token is
 * bound to exactly one configured MCP endpoint (MCP authorization, "Token Audience Binding"),
 * issued as an RFC 9068 JWT signed ES256. A machine client (MCP extension
 * "oauth-client-credentials") reaches only the servers and scopes it was created with; a
 * request naming no scope gets the endpoint's (RFC 6749 §3.3).
 */
import type { Kysely } from "kysely";
import type { OAuthDatabase } from "./database.js";
import { applyDefaultScope, type ScopeRequestContext } from "./defaultScope.js";
import { defaultMachineClientScope, findMachineClient, isMachineClientId } from "./machineClients.js";
import type { OidcClient, OidcContext, OidcProviderModule } from "./oidcProvider.js";

export interface ResourceIndicatorSettings {
  issuer: string;
  db: Kysely<OAuthDatabase>;
  /** The MCP endpoints (exact URLs) and the scopes each supports. */
  resources: ReadonlyMap<string, string[]>;
  accessTokenTtlSeconds: number;
  errors: OidcProviderModule["errors"];
  /** The admin console: it signs users in (`openid`) and never gets a token for an MCP endpoint. */
  isFirstParty: (clientId: unknown) => boolean;
}

/** oidc-provider's `features.resourceIndicators`. */
export function resourceIndicators(settings: ResourceIndicatorSettings): Record<string, unknown> {
  const { issuer, db, resources, errors, isFirstParty } = settings;
  const accessTtl = settings.accessTokenTtlSeconds;
  return {
    enabled: true,
    // RFC 8707 §2: the authorization request must name the resource; at the token
    // endpoint the granted one is used when the client repeats none.
    async defaultResource(ctx: OidcContext, client: OidcClient | undefined, oneOf?: string[]) {
      // The console signs users in (`openid`) and never receives a token for an MCP endpoint.
      if (isFirstParty(client?.clientId) && oneOf === undefined) return undefined;
      if (Array.isArray(oneOf)) {
        if (oneOf.length === 1) return oneOf[0];
        throw new errors.InvalidTarget("exactly one resource must be requested for an access token");
      }
      if (ctx.oidc.route === "token" && ctx.oidc.params?.grant_type !== "client_credentials")
        return undefined;
      throw new errors.InvalidTarget("the resource parameter is required (RFC 8707)");
    },
    useGrantedResource: async () => true,
    async getResourceServerInfo(ctx: ScopeRequestContext, indicator: string, client?: OidcClient) {
      let scopes = resources.get(indicator);
      if (scopes === undefined) throw new errors.InvalidTarget("unknown resource");
      if (client !== undefined && isMachineClientId(client.clientId)) {
        // A machine client reaches only the servers and scopes it was created with.
        const machine = await findMachineClient(db, client.clientId);
        const allowed = new Set(machine?.scopes ?? []);
        if (machine === undefined || !machine.servers.some((s) => `${issuer}/mcp/${s}` === indicator)) {
          throw new errors.InvalidTarget("this client may not obtain tokens for the requested resource");
        }
        scopes = scopes.filter((s) => allowed.has(s));
        defaultMachineClientScope(ctx, scopes); // RFC 6749 §3.3: none requested, all allowed
      }
      applyDefaultScope(ctx, scopes); // RFC 6749 §3.3: no scope requested
      return {
        scope: scopes.join(" "),
        audience: indicator,
        accessTokenTTL: accessTtl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      };
    },
  };
}
