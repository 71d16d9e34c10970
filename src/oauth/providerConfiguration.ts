/**
 * The oidc-provider configuration of the built-in authorization server (see
 * ./authorizationServer.ts for the profile): OAuth 2.1 authorization code with PKCE S256
 * (RFC 7636 §4.2), refresh tokens rotated on every use (OAuth 2.1 §4.3.1), RFC 7009
 * revocation and RFC 7662 introspection limited to the token's own client, Client ID
 * Metadata Documents fetched through ./safeFetch.ts, state in the SQL store (./adapter.ts).
 * The signing keys (`jwks`) are added by the caller, which rebuilds the provider on rotation.
 */
import type { Kysely } from "kysely";
import type { Store } from "../store/types.js";
import { sqlAdapter } from "./adapter.js";
import type { FirstPartyClient } from "./authorizationServerOptions.js";
import { clientMetadataPolicy } from "./clientMetadataPolicy.js";
import { askUnlessClientIdentityAssured } from "./consentPolicy.js";
import type { OAuthDatabase } from "./database.js";
import type { IdJagGrant } from "./idJag.js";
import { escapeHtml, PAGE_HEADERS, pageHtml } from "./interactionPages.js";
import { rememberedGrantId } from "./interactions.js";
import { INTERACTION_PREFIX } from "./interactionViews.js";
import { isMachineClientId, withMachineClients } from "./machineClients.js";
import type { OidcClient, OidcContext, OidcGrant, OidcProvider, OidcProviderModule } from "./oidcProvider.js";
import type { RegistrationLimits } from "./registration.js";
import { resourceIndicators } from "./resourceIndicators.js";
import { DEFAULT_MAX_BYTES, type SafeFetchPolicy, safeFetch } from "./safeFetch.js";
import { deriveOAuthKey } from "./secrets.js";
import type { ArtefactKeys } from "./storedArtefacts.js";
import { findUser } from "./users.js";

export interface ProviderSettings {
  issuer: string;
  environment: string;
  /** An https issuer: cookies are `Secure` and `__Host-`/`__Secure-` prefixed. */
  https: boolean;
  store: Store;
  db: Kysely<OAuthDatabase>;
  /** The gateway server secret: cookie and client-secret keys derive from it (./secrets.ts). */
  secret: Buffer;
  artefactKeys: ArtefactKeys;
  /** The MCP endpoints (exact URLs) and the scopes each supports. */
  resources: ReadonlyMap<string, string[]>;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  firstParty: FirstPartyClient | undefined;
  registration: RegistrationLimits;
  oidc: OidcProviderModule;
  /** The provider now serving (replaced when signing keys rotate): remembered grants are made with it. */
  currentProvider: () => OidcProvider;
  /** Enterprise-managed authorization (ID-JAG), when configured. */
  enterprise: IdJagGrant | null;
}

/** Everything but `jwks`, which the caller adds for each build of the provider. */
export function providerConfiguration(settings: ProviderSettings): Record<string, unknown> {
  const { issuer, environment, https, db, resources, firstParty } = settings;
  const { errors } = settings.oidc;
  const keys = settings.artefactKeys;
  const registrationLimits = settings.registration;
  const accessTtl = settings.accessTokenTtlSeconds;
  const refreshTtl = settings.refreshTokenTtlSeconds;
  const allScopes = [...new Set([...resources.values()].flat())];
  const fetchPolicy: SafeFetchPolicy = { environment, maxBytes: DEFAULT_MAX_BYTES };
  const isFirstParty = (clientId: unknown) => firstParty !== undefined && clientId === firstParty.clientId;
  const policy = settings.oidc.interactionPolicy.base();
  // RFC 8252 §8.6: consent is remembered only for operator-registered and same-origin CIMD clients.
  askUnlessClientIdentityAssured(policy, (id) => isFirstParty(id) || isMachineClientId(id));

  const machineClientsAdapter = withMachineClients(
    // Announced before the revocation is answered, so no replica accepts the grant's tokens after.
    sqlAdapter(db, keys, {
      onGrantRevoked: async () => {
        await settings.store.mutateCredentials(async () => true);
      },
      unusedClientTtlSeconds: registrationLimits.unusedClientTtlSeconds,
    }),
    db,
    deriveOAuthKey(settings.secret, "client-secret-encryption"),
    new Set(allScopes),
  );

  return {
    adapter: settings.enterprise?.withClients(machineClientsAdapter) ?? machineClientsAdapter,
    ...(settings.enterprise === null ? {} : { discovery: settings.enterprise.discovery }),
    cookies: {
      keys: [deriveOAuthKey(settings.secret, "cookie-signing").toString("base64url")],
      // __Host- needs Path=/; oidc-provider scopes the interaction cookies to their paths.
      names: https
        ? {
            session: "__Host-oauth_session",
            interaction: "__Secure-oauth_interaction",
            resume: "__Secure-oauth_resume",
          }
        : { session: "oauth_session", interaction: "oauth_interaction", resume: "oauth_resume" },
      long: { httpOnly: true, sameSite: "lax", secure: https },
      short: { httpOnly: true, sameSite: "lax", secure: https },
    },
    scopes: ["openid", ...allScopes],
    clients:
      firstParty === undefined
        ? []
        : [
            {
              client_id: firstParty.clientId,
              client_name: firstParty.clientName,
              client_secret: firstParty.clientSecret,
              redirect_uris: [firstParty.redirectUri],
              grant_types: ["authorization_code"],
              response_types: ["code"],
              token_endpoint_auth_method: "client_secret_basic",
            },
          ],
    responseTypes: ["code"],
    // OAuth 2.1 §4.1.3: redirect_uri is always sent and compared exactly.
    allowOmittingSingleRegisteredRedirectUri: false,
    clientDefaults: {
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      id_token_signed_response_alg: "ES256",
    },
    clientAuthMethods: ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
    pkce: { required: () => true },
    async findAccount(_ctx: unknown, sub: string) {
      const user = await findUser(db, sub);
      if (user === undefined || user.disabledAt !== null) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: user.email ?? undefined,
            preferred_username: user.username,
            groups: user.groups,
          };
        },
      };
    },
    async extraTokenClaims(_ctx: unknown, token: { accountId?: string; grantId?: string; kind?: string }) {
      const claims: Record<string, unknown> = {};
      if (token.grantId !== undefined) claims.grant_id = token.grantId;
      if (token.accountId !== undefined) {
        const user = await findUser(db, token.accountId);
        if (user !== undefined) {
          claims.preferred_username = user.username;
          if (user.email !== null) claims.email = user.email;
          claims.groups = user.groups;
        }
      }
      return claims;
    },
    // Refresh tokens without offline_access (never advertised), rotated on every use.
    async issueRefreshToken(_ctx: unknown, client: OidcClient) {
      return client.grantTypeAllowed("refresh_token");
    },
    rotateRefreshToken: true,
    async expiresWithSession() {
      return false;
    },
    async loadExistingGrant(ctx: OidcContext) {
      const client = ctx.oidc.client;
      if (client === undefined) return undefined;
      const accountId = ctx.oidc.session?.accountId;
      const grantId =
        ctx.oidc.result?.consent?.grantId ??
        ctx.oidc.session?.grantIdFor(client.clientId) ??
        (accountId === undefined ? undefined : await rememberedGrantId(db, accountId, client.clientId));
      const { Grant } = settings.currentProvider();
      if (grantId === undefined) {
        if (!isFirstParty(client.clientId) || accountId === undefined) return undefined;
        // The console asks for `openid` only: signing in is the whole decision.
        const fresh: OidcGrant = new Grant({ clientId: client.clientId, accountId });
        fresh.addOIDCScope("openid");
        await fresh.save();
        return fresh;
      }
      const grant: OidcGrant | undefined = await Grant.find(grantId);
      if (grant === undefined || grant.accountId !== accountId || grant.clientId !== client.clientId)
        return undefined;
      return grant;
    },
    interactions: { policy, url: (_ctx: unknown, i: { uid: string }) => `${INTERACTION_PREFIX}${i.uid}` },
    async renderError(ctx: OidcContext, out: Record<string, string>) {
      for (const [k, v] of Object.entries(PAGE_HEADERS)) ctx.set(k, v);
      ctx.type = "html";
      ctx.body = pageHtml(
        "Authorization error",
        [
          "<h1>Authorization error</h1>",
          ...Object.entries(out).map(
            ([k, v]) => `<p><code>${escapeHtml(k)}</code>: ${escapeHtml(String(v))}</p>`,
          ),
        ].join("\n"),
      );
    },
    clientBasedCORS(_ctx: unknown, origin: string, client: OidcClient) {
      // Browser-based clients may call the token endpoint from their redirect URIs' origin.
      return client.redirectUris.some((u) => URL.parse(u)?.origin === origin);
    },
    ttl: {
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 90 * 24 * 3600,
      RefreshToken: refreshTtl,
    },
    extraClientMetadata: clientMetadataPolicy({
      environment,
      registration: registrationLimits,
      errors,
      isFirstParty,
    }),
    fetch: (url: string | URL, init: { headers?: HeadersInit; signal?: AbortSignal }) =>
      safeFetch(url, fetchPolicy, {
        ...(init.headers ? { headers: init.headers } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      }),
    fetchResponseBodyLimits: {
      "client_id metadata document": DEFAULT_MAX_BYTES,
      jwks_uri: DEFAULT_MAX_BYTES,
      sector_identifier_uri: DEFAULT_MAX_BYTES,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      // No registration access token: the RFC 7592 management endpoint (/reg/:id) is not
      // served, so the token would be one more bearer secret to store for nothing.
      registration: { enabled: true, initialAccessToken: false, issueRegistrationAccessToken: false },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: OidcClient, token: { clientId?: string }) =>
          token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: OidcClient, token: { clientId?: string }) =>
          token.clientId === client.clientId,
      },
      clientIdMetadataDocument: {
        enabled: true,
        ack: "draft-02",
        cacheDuration: { min: 60, max: 24 * 3600 },
      },
      resourceIndicators: resourceIndicators({
        issuer,
        db,
        resources,
        accessTokenTtlSeconds: accessTtl,
        errors,
        isFirstParty,
      }),
    },
  };
}
