/**
 * The built-in OAuth 2.1 authorization server for MCP (MCP authorization 2025-11-25 /
 * 2026-07-28, "Authorization Server" requirements), built on oidc-provider and mounted at the
 * gateway's root:
 * - authorization code with PKCE, S256 only (OAuth 2.1 §4.1, RFC 7636 §4.2);
 * - resource indicators required (RFC 8707): each access token is an RFC 9068 JWT bound to
 *   exactly one configured MCP endpoint, short-lived;
 * - refresh tokens rotated on every use; presenting a rotated one revokes the whole grant
 *   (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2), as does a reused authorization code (RFC 9700 §4.5);
 * - revocation (RFC 7009), introspection (RFC 7662), `iss` in every authorization response
 *   (RFC 9207), metadata at /.well-known/oauth-authorization-server (RFC 8414);
 * - clients by Dynamic Client Registration (RFC 7591) or Client ID Metadata Documents
 *   (fetched through ./safeFetch.ts);
 * - machine clients created by the operator for client_credentials (MCP extension
 *   "oauth-client-credentials"; private_key_jwt or client_secret_basic): ./machineClients.ts;
 *   their tokens have no grant and live only as long as the client (./machineClientRoster.ts);
 * - state in the gateway's SQL store (./adapter.ts), signing keys sealed at rest
 *   (./signingKeys.ts), local users (./users.ts), sign-in and consent pages (./interactions.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { JWK } from "jose";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { TokenCheck } from "../authn/oauthToken.js";
import type { RateLimitCounters } from "../store/rateLimitCounters.js";
import type { AuditRecord, Store } from "../store/types.js";
import { type AbuseLimitSettings, createAbuseLimits, DEFAULT_ABUSE_LIMITS } from "./abuseLimits.js";
import { AccessTokenVerifier } from "./accessTokens.js";
import { purgeExpired, sqlAdapter } from "./adapter.js";
import { auditClientCredentials } from "./clientCredentialsAudit.js";
import { askUnlessClientIdentityAssured } from "./consentPolicy.js";
import type { ResourceAccess } from "./consentSummary.js";
import { type OAuthDatabase, oauthDatabase } from "./database.js";
import { applyDefaultScope, type ScopeRequestContext } from "./defaultScope.js";
import { federatedSignIn, UPSTREAM_CALLBACK_PATH } from "./federatedSignIn.js";
import { type FederationConfig, FederationError, UpstreamLogin } from "./federation.js";
import {
  escapeHtml,
  handleInteraction,
  INTERACTION_PREFIX,
  rememberedGrantId,
  STYLESHEET_PATH,
  sendPage,
  sendStylesheet,
} from "./interactions.js";
import { pinToIssuer } from "./issuerOrigin.js";
import { protectLegacyArtefacts } from "./legacyArtefacts.js";
import { MachineClientRoster } from "./machineClientRoster.js";
import {
  defaultMachineClientScope,
  findMachineClient,
  isMachineClientId,
  withMachineClients,
} from "./machineClients.js";
import { loadOidcProvider, type OidcClient, type OidcContext, type OidcGrant } from "./oidcProvider.js";
import {
  DEFAULT_REGISTRATION_LIMITS,
  preReadRegistration,
  type RegistrationLimits,
  redirectUriProblem,
  registrationThrottled,
} from "./registration.js";
import { DEFAULT_MAX_BYTES, type SafeFetchPolicy, safeFetch } from "./safeFetch.js";
import { deriveOAuthKey } from "./secrets.js";
import {
  loadSigningKeys,
  SIGNING_KEY_RELOAD_SECONDS,
  type SigningKey,
  signingKeySetVersion,
} from "./signingKeys.js";
import { artefactKeys } from "./storedArtefacts.js";
import { replyStoreOutage, reportStoreOutage } from "./storeOutage.js";
import { reportUnauthorizedClient } from "./unauthorizedClient.js";
import { findUser } from "./users.js";

export interface AuthorizationServerOptions {
  /** The gateway's public base URL (origin only); the AS routes live at its root. */
  issuer: string;
  /** The gateway's MCP endpoints (exact resource URLs) and the scopes each supports. */
  resources: Array<{
    url: string;
    scopes: string[];
    /** What each scope unlocks there, shown on the consent page. */
    access?: ResourceAccess;
  }>;
  store: Store;
  /** The gateway server secret (≥ 32 bytes): keys for sealing signing keys and cookies derive from it. */
  secret: Buffer;
  /** "dev" allows http loopback redirect and metadata-document targets; otherwise https only. */
  environment: string;
  /** Default 300. */
  accessTokenTtlSeconds?: number;
  /** Default 14 days; each rotation starts a new period, capped by the grant's life. */
  refreshTokenTtlSeconds?: number;
  log: Logger;
  /** Where token-endpoint decisions are audited: the gateway's chained writer, never the store directly. */
  audit: (record: AuditRecord) => void;
  /** How users sign in. Default: local users only. */
  login?: LoginOptions;
  /** Limits on password guessing and registration floods. Default: DEFAULT_ABUSE_LIMITS. */
  limits?: AbuseLimitSettings;
  /** Where those limits count (shared by replicas on PostgreSQL); closed with the AS. Default: memory. */
  counters?: RateLimitCounters;
  /** The admin console (src/console/) as a first-party confidential client; absent: no console. */
  consoleClient?: FirstPartyClient;
  /** Bounds on self-registered clients (RFC 7591 §5). Default: DEFAULT_REGISTRATION_LIMITS. */
  registration?: RegistrationLimits;
}

/**
 * A client that is part of the gateway itself (the admin console): registered statically,
 * its redirect URI on the issuer's own origin, asking only for `openid` (no resource, no
 * access to an MCP endpoint) and never shown a consent page: the user signs in, nothing more.
 */
export interface FirstPartyClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** Sign-in delegated to an upstream OpenID Provider; the redirect URI is `<issuer>/oauth/callback`. */
export interface UpstreamLoginOptions extends Omit<FederationConfig, "redirectUri"> {
  /** Shown as "Sign in with <name>"; default: the issuer's host. */
  name?: string;
}

export interface LoginOptions {
  upstream?: UpstreamLoginOptions;
  /** Password sign-in with local users. Default: true without `upstream`, false with it. */
  localUsers?: boolean;
}

export interface AuthorizationServer {
  /** True when this request belongs to the AS (path match), so the listener hands it over before body parsing. */
  owns(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * Verifies an access token issued by this AS for `resource`. Synchronous on a cache hit;
   * the grant's (or machine client's) revocation is checked on every call, so a cached token never outlives it.
   */
  verifyAccessToken(token: string, resource: string): TokenCheck | Promise<TokenCheck>;
  close(): Promise<void>;
}

/** Paths oidc-provider serves with this configuration (its defaults). */
const EXACT_PATHS = new Set([
  "/auth",
  "/token",
  "/reg",
  "/jwks",
  "/token/introspection",
  "/token/revocation",
  "/request",
  "/.well-known/oauth-authorization-server",
  "/.well-known/openid-configuration",
  STYLESHEET_PATH,
  UPSTREAM_CALLBACK_PATH,
]);
/** `/auth/:uid` is where an interaction resumes. */
const PREFIXES = ["/auth/", INTERACTION_PREFIX];

export class AuthorizationServerConfigError extends Error {
  override name = "AuthorizationServerConfigError";
}

function validateOptions(opts: AuthorizationServerOptions): URL {
  const issuer = URL.parse(opts.issuer);
  if (issuer === null || (issuer.protocol !== "https:" && issuer.protocol !== "http:")) {
    throw new AuthorizationServerConfigError(`oauth issuer must be an http(s) URL, got ${opts.issuer}`);
  }
  if (issuer.pathname !== "/" || issuer.search !== "" || issuer.hash !== "" || opts.issuer.endsWith("/")) {
    throw new AuthorizationServerConfigError(
      `oauth issuer must be an origin without path or trailing slash (e.g. https://gateway.example.com), got ${opts.issuer}`,
    );
  }
  if (issuer.protocol === "http:" && opts.environment !== "dev") {
    throw new AuthorizationServerConfigError("oauth issuer must be https outside the dev environment");
  }
  if (opts.resources.length === 0) {
    throw new AuthorizationServerConfigError("oauth resources: at least one MCP endpoint is needed");
  }
  for (const r of opts.resources) {
    const url = URL.parse(r.url);
    if (url === null || url.hash !== "" || url.href !== r.url) {
      throw new AuthorizationServerConfigError(
        `oauth resources: ${r.url} must be an absolute URL in normalized form without fragment`,
      );
    }
    for (const s of r.scopes) {
      if (s === "offline_access" || s === "openid") {
        throw new AuthorizationServerConfigError(`oauth resources: scope ${s} is reserved`);
      }
    }
  }
  if (opts.login?.localUsers === false && opts.login.upstream === undefined) {
    throw new AuthorizationServerConfigError(
      "login.localUsers: false leaves no way to sign in; configure login.upstream or remove localUsers",
    );
  }
  if (opts.secret.length < 32)
    throw new AuthorizationServerConfigError("the server secret must be at least 32 bytes");
  return issuer;
}

/** OpenID Connect Discovery of the upstream login provider, at startup so a wrong issuer fails early. */
async function discoverUpstream(
  opts: AuthorizationServerOptions,
  issuer: string,
): Promise<UpstreamLogin | null> {
  const upstream = opts.login?.upstream;
  if (upstream === undefined) return null;
  if (upstream.allowInsecure && opts.environment !== "dev") {
    throw new AuthorizationServerConfigError(
      `login.upstream.allowInsecureHttp is allowed only in the dev environment (this is ${opts.environment}); remove it and use an https issuer`,
    );
  }
  try {
    return await UpstreamLogin.discover({ ...upstream, redirectUri: `${issuer}${UPSTREAM_CALLBACK_PATH}` });
  } catch (err) {
    if (!(err instanceof FederationError)) throw err;
    throw new AuthorizationServerConfigError(`login.upstream.issuer: ${err.message}`);
  }
}

/** oidc-provider's `jwks`: retired keys are published for verification only. */
function jwksOf(keys: SigningKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => (k.retiredAt === null ? k.jwk : { ...k.jwk, key_ops: ["verify"] })) };
}

export async function createAuthorizationServer(
  opts: AuthorizationServerOptions,
): Promise<AuthorizationServer> {
  const issuerUrl = validateOptions(opts);
  const { issuer, environment, log } = opts;
  const https = issuerUrl.protocol === "https:";
  const db: Kysely<OAuthDatabase> = oauthDatabase(opts.store);
  const accessTtl = opts.accessTokenTtlSeconds ?? 300;
  const refreshTtl = opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600;
  const resources = new Map(opts.resources.map((r) => [r.url, [...new Set(r.scopes)]]));
  const accessByResource = new Map(opts.resources.map((r) => [r.url, r.access]));
  const allScopes = [...new Set(opts.resources.flatMap((r) => r.scopes))];
  const fetchPolicy: SafeFetchPolicy = { environment, maxBytes: DEFAULT_MAX_BYTES };
  const upstreamLogin = await discoverUpstream(opts, issuer);
  const firstParty = opts.consoleClient;
  const isFirstParty = (clientId: unknown) => firstParty !== undefined && clientId === firstParty.clientId;
  const registrationLimits = opts.registration ?? DEFAULT_REGISTRATION_LIMITS;
  const keys = artefactKeys(opts.secret);
  const converted = await protectLegacyArtefacts(db, keys, {
    unusedClientTtlSeconds: registrationLimits.unusedClientTtlSeconds,
  });
  if (converted > 0)
    log.info(
      { event: "oauth.artefacts_protected", rows: converted },
      "stored OAuth artefacts hashed and sealed",
    );

  let signingKeys: SigningKey[] = await loadSigningKeys(db, opts.secret);
  const { default: Provider, errors, interactionPolicy } = await loadOidcProvider();
  const policy = interactionPolicy.base();
  // RFC 8252 §8.6: consent is remembered only for operator-registered and same-origin CIMD clients.
  askUnlessClientIdentityAssured(policy, (id) => isFirstParty(id) || isMachineClientId(id));

  const configuration: Record<string, unknown> = {
    adapter: withMachineClients(
      // Announced before the revocation is answered, so no replica accepts the grant's tokens after.
      sqlAdapter(db, keys, {
        onGrantRevoked: async () => {
          await opts.store.mutateCredentials(async () => true);
        },
        unusedClientTtlSeconds: registrationLimits.unusedClientTtlSeconds,
      }),
      db,
      deriveOAuthKey(opts.secret, "client-secret-encryption"),
      new Set(allScopes),
    ),
    jwks: jwksOf(signingKeys),
    cookies: {
      keys: [deriveOAuthKey(opts.secret, "cookie-signing").toString("base64url")],
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
      if (grantId === undefined) {
        if (!isFirstParty(client.clientId) || accountId === undefined) return undefined;
        // The console asks for `openid` only: signing in is the whole decision.
        const fresh: OidcGrant = new provider.Grant({ clientId: client.clientId, accountId });
        fresh.addOIDCScope("openid");
        await fresh.save();
        return fresh;
      }
      const grant: OidcGrant | undefined = await provider.Grant.find(grantId);
      if (grant === undefined || grant.accountId !== accountId || grant.clientId !== client.clientId)
        return undefined;
      return grant;
    },
    interactions: { policy, url: (_ctx: unknown, i: { uid: string }) => `${INTERACTION_PREFIX}${i.uid}` },
    async renderError(ctx: OidcContext, out: Record<string, string>) {
      for (const [k, v] of Object.entries({
        "content-security-policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
      })) {
        ctx.set(k, v);
      }
      ctx.type = "html";
      ctx.body = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Authorization error</title>',
        `<link rel="stylesheet" href="${STYLESHEET_PATH}"></head><body><h1>Authorization error</h1>`,
        ...Object.entries(out).map(
          ([k, v]) => `<p><code>${escapeHtml(k)}</code>: ${escapeHtml(String(v))}</p>`,
        ),
        "</body></html>",
      ].join("\n");
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
    extraClientMetadata: {
      // RFC 7591 §2 software statement fields; the validator runs once per registration or
      // metadata document (oidc-provider calls it only for extra properties), so the
      // redirect URI policy is enforced from here for DCR and CIMD clients alike.
      properties: ["software_id", "software_version"],
      validator(_ctx: unknown, key: string, value: unknown, metadata: Record<string, unknown>) {
        if (value !== undefined && typeof value !== "string") {
          throw new errors.InvalidClientMetadata(`${key} must be a string`);
        }
        if (key !== "software_id") return;
        // The console's redirect URI is on the issuer's own origin (FirstPartyClient above).
        if (isFirstParty(metadata.client_id)) return;
        // MCP "oauth-client-credentials": clients for it are created by the operator, never self-registered.
        const grantTypes = metadata.grant_types;
        if (
          Array.isArray(grantTypes) &&
          grantTypes.includes("client_credentials") &&
          !isMachineClientId(metadata.client_id)
        ) {
          throw new errors.InvalidClientMetadata(
            "client_credentials is only for clients created by the operator (portcullis clients create)",
          );
        }
        const uris = metadata.redirect_uris;
        if (!Array.isArray(uris)) return;
        if (uris.length > registrationLimits.maxRedirectUris) {
          throw new errors.InvalidClientMetadata(
            `at most ${registrationLimits.maxRedirectUris} redirect_uris may be registered`,
          );
        }
        const applicationType = String(metadata.application_type ?? "web");
        for (const uri of uris) {
          const problem = redirectUriProblem(String(uri), applicationType, environment);
          if (problem !== null) throw new errors.InvalidRedirectUri(`redirect_uri ${String(uri)} ${problem}`);
        }
      },
    },
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
      resourceIndicators: {
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
      },
    },
  };

  /**
   * oidc-provider reads its signing keys once, at construction; a rotation made by another
   * process (`portcullis oauth signing-keys rotate`) is picked up by building a new instance
   * over the same store and configuration (all state lives in the adapter, so nothing is lost).
   */
  const buildProvider = (keys: SigningKey[]) => {
    const built = new Provider(issuer, { ...configuration, jwks: jwksOf(keys) });
    pinToIssuer(built, issuerUrl); // URLs from the issuer, never from the Host header
    reportUnauthorizedClient(built); // before callback(): Koa composes middleware there
    reportStoreOutage(built);
    built.on("grant.revoked", (_ctx, grantId) => {
      if (typeof grantId !== "string") return;
      tokens.noteRevoked(grantId);
    });
    built.on("server_error", (_ctx, error) => log.error({ err: error }, "authorization server error"));
    auditClientCredentials(built, issuer, environment, opts.audit);
    return built;
  };

  /** Set by the store's change feed: some credential changed somewhere (grant revoked, keys rotated). */
  let credentialsChanged = false;
  const machineClients = new MachineClientRoster(opts.store, db, () => {
    credentialsChanged = true;
  });
  await machineClients.start();
  const tokens = new AccessTokenVerifier({
    issuer,
    environment,
    resources: new Set(resources.keys()),
    db,
    secret: opts.secret,
    artefactKeys: keys,
    keys: signingKeys,
    machineClients,
    accessTokenTtlSeconds: accessTtl,
  });
  let provider = buildProvider(signingKeys);
  let providerCallback = provider.callback();

  const signInDeps =
    upstreamLogin === null
      ? null
      : {
          provider,
          db,
          upstream: upstreamLogin,
          name: opts.login?.upstream?.name ?? new URL(upstreamLogin.issuer).host,
          issuer,
          secure: https,
          log,
          keys,
        };
  const signIn = signInDeps === null ? null : federatedSignIn(signInDeps);
  const abuseLimits = createAbuseLimits(opts.limits ?? DEFAULT_ABUSE_LIMITS, {
    secret: opts.secret,
    ...(opts.counters === undefined ? {} : { counters: opts.counters }),
  });
  const interactionDeps = {
    provider,
    db,
    csrfKey: deriveOAuthKey(opts.secret, "interaction-csrf"),
    log,
    localUsers: opts.login?.localUsers ?? signIn === null,
    upstream: signIn,
    limits: abuseLimits,
    resourceAccess: (resource: string) => accessByResource.get(resource),
  };

  /** Rebuilds the verification key set and the provider when the stored key set changed. */
  let keySetVersion = await signingKeySetVersion(db);
  let keyCheck: Promise<void> | null = null;
  const followKeyRotation = (): Promise<void> => {
    keyCheck ??= (async () => {
      const version = await signingKeySetVersion(db);
      if (version === keySetVersion) return;
      keySetVersion = version;
      signingKeys = await loadSigningKeys(db, opts.secret);
      tokens.useKeys(signingKeys);
      const next = buildProvider(signingKeys);
      provider = next;
      providerCallback = next.callback();
      interactionDeps.provider = next;
      if (signInDeps !== null) signInDeps.provider = next;
      log.info(
        { event: "oauth.signing_keys_reloaded", kids: signingKeys.map((k) => k.kid) },
        "signing keys reloaded",
      );
    })()
      .catch((err: unknown) => log.error({ err }, "could not reload the signing keys"))
      .finally(() => {
        keyCheck = null;
      });
    return keyCheck;
  };
  const keyTimer = setInterval(() => void followKeyRotation(), SIGNING_KEY_RELOAD_SECONDS * 1000);
  keyTimer.unref();

  /** Runs before every token check: a change anywhere empties the cache, so grants are re-read. */
  const observeChanges = (): Promise<void> | undefined => {
    const pending = machineClients.refresh();
    if (!credentialsChanged) return pending;
    credentialsChanged = false;
    tokens.forgetVerified();
    // The first check after a change waits for a rotation to be followed (a compromised key's
    // tokens must not pass even once); changes are rare, so this costs nothing in the steady state.
    return Promise.all([pending, followKeyRotation()]).then(() => undefined);
  };

  const purgeTimer = setInterval(() => {
    purgeExpired(db).catch((err: unknown) => log.warn({ err }, "purging expired OAuth artefacts failed"));
  }, 10 * 60_000);
  purgeTimer.unref();

  const fail = (res: ServerResponse, err: unknown) => {
    log.error({ err }, "authorization server request failed");
    if (replyStoreOutage(res, err)) return;
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ error: "server_error" }));
    } else {
      res.destroy();
    }
  };

  const owns = (pathname: string): boolean =>
    EXACT_PATHS.has(pathname) || PREFIXES.some((p) => pathname.startsWith(p));

  return {
    owns,

    handle(req: IncomingMessage, res: ServerResponse): void {
      const pathname = new URL(req.url ?? "/", "http://x").pathname;
      if (pathname === STYLESHEET_PATH) {
        sendStylesheet(res);
        return;
      }
      if (pathname === UPSTREAM_CALLBACK_PATH) {
        if (signIn === null) sendPage(res, 404, "Not found", "<h1>Not found</h1>");
        else signIn.handleCallback(req, res).catch((err: unknown) => fail(res, err));
        return;
      }
      if (pathname.startsWith(INTERACTION_PREFIX)) {
        handleInteraction(interactionDeps, req, res).catch((err: unknown) => fail(res, err));
        return;
      }
      if (pathname === "/reg" && req.method === "POST") {
        // The socket's peer, not X-Forwarded-For: there is no trusted-proxy setting yet.
        abuseLimits
          .registrationRetryAfter(req.socket.remoteAddress ?? "unknown")
          .then(async (retryAfter) => {
            if (retryAfter !== null) {
              log.warn(
                { event: "oauth.registration_throttled", address: req.socket.remoteAddress, retryAfter },
                "client registration throttled",
              );
              return registrationThrottled(req, res, retryAfter);
            }
            if (await preReadRegistration(req, res)) providerCallback(req, res);
          })
          .catch((err: unknown) => fail(res, err));
        return;
      }
      if (!owns(pathname)) {
        sendPage(res, 404, "Not found", "<h1>Not found</h1>");
        return;
      }
      if (pathname === "/token") {
        // A rotation made elsewhere must sign this token with the new key, not a dropped one.
        const pending = observeChanges();
        if (pending !== undefined) {
          pending.then(() => providerCallback(req, res)).catch((err: unknown) => fail(res, err));
          return;
        }
      }
      providerCallback(req, res);
    },

    verifyAccessToken(token: string, resource: string): TokenCheck | Promise<TokenCheck> {
      const pending = observeChanges();
      if (!machineClients.feedHealthy()) {
        return {
          ok: false,
          reason: "revocation state unknown (store change feed down): failing closed",
          credentialId: null,
          unavailable: true,
        };
      }
      return tokens.verify(token, resource, pending);
    },

    async close(): Promise<void> {
      clearInterval(purgeTimer);
      clearInterval(keyTimer);
      tokens.forgetVerified();
      await machineClients.close();
      await opts.counters?.close();
    },
  };
}
