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
 *   (./signingKeys.ts), local users (./users.ts), sign-in and consent pages (./interactions.ts),
 *   each sign-in and consent audited through the gateway's chained writer (./signInAudit.ts).
 * This module wires the parts: options (./authorizationServerOptions.ts), the oidc-provider
 * configuration (./providerConfiguration.ts), routes (./authorizationServerRoutes.ts), key
 * rotation (./signingKeyRotation.ts) and token verification (./builtinTokenVerifier.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { JWK } from "jose";
import type { AccessTokenVerifier, TokenCheck } from "../authn/oauthToken.js";
import { createAbuseLimits, DEFAULT_ABUSE_LIMITS } from "./abuseLimits.js";
import { purgeExpired } from "./adapter.js";
import {
  type AuthorizationServerOptions,
  discoverUpstream,
  validateOptions,
} from "./authorizationServerOptions.js";
import { ownsPath, routeAuthorizationServerRequest } from "./authorizationServerRoutes.js";
import { BuiltinTokenVerifier } from "./builtinTokenVerifier.js";
import { auditClientCredentials } from "./clientCredentialsAudit.js";
import { oauthDatabase } from "./database.js";
import { federatedSignIn } from "./federatedSignIn.js";
import { idJagGrant } from "./idJag.js";
import { pinToIssuer } from "./issuerOrigin.js";
import { protectLegacyArtefacts } from "./legacyArtefacts.js";
import { MachineClientRoster } from "./machineClientRoster.js";
import { loadOidcProvider, type OidcProvider } from "./oidcProvider.js";
import { providerConfiguration } from "./providerConfiguration.js";
import { DEFAULT_REGISTRATION_LIMITS } from "./registration.js";
import { deriveOAuthKey } from "./secrets.js";
import { signInAudit } from "./signInAudit.js";
import { SigningKeyRotation } from "./signingKeyRotation.js";
import { loadSigningKeys, type SigningKey } from "./signingKeys.js";
import { artefactKeys } from "./storedArtefacts.js";
import { reportStoreOutage } from "./storeOutage.js";
import { exchangeResources, registerTokenExchange, type TaskExchangeServices } from "./tokenExchange.js";
import { reportUnauthorizedClient } from "./unauthorizedClient.js";

export {
  AuthorizationServerConfigError,
  type AuthorizationServerOptions,
  type FirstPartyClient,
  type LoginOptions,
  type UpstreamLoginOptions,
} from "./authorizationServerOptions.js";

export interface AuthorizationServer {
  /** True when this request belongs to the AS (path match), so the listener hands it over before body parsing. */
  owns(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The authn verifier of this AS's access tokens (what `verifyAccessToken` calls). */
  readonly tokenVerifier: AccessTokenVerifier;
  /**
   * Verifies an access token issued by this AS for `resource`. Synchronous on a cache hit;
   * the grant's (or machine client's) revocation is checked on every call, so a cached token never outlives it.
   */
  verifyAccessToken(token: string, resource: string): TokenCheck | Promise<TokenCheck>;
  close(): Promise<void>;
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
  const db = oauthDatabase(opts.store);
  const accessTtl = opts.accessTokenTtlSeconds ?? 300;
  const resources = new Map(opts.resources.map((r) => [r.url, [...new Set(r.scopes)]]));
  const accessByResource = new Map(opts.resources.map((r) => [r.url, r.access]));
  const upstreamLogin = await discoverUpstream(opts, issuer);
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

  const signingKeys: SigningKey[] = await loadSigningKeys(db, opts.secret);
  const oidc = await loadOidcProvider();
  const enterprise =
    opts.enterprise === undefined
      ? null
      : idJagGrant({
          issuer,
          environment,
          db,
          resources,
          accessTokenTtlSeconds: accessTtl,
          enterprise: opts.enterprise,
          errors: oidc.errors,
          audit: opts.audit,
        });
  const configuration = providerConfiguration({
    issuer,
    environment,
    https,
    store: opts.store,
    db,
    secret: opts.secret,
    artefactKeys: keys,
    resources,
    accessTokenTtlSeconds: accessTtl,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
    firstParty: opts.consoleClient,
    registration: registrationLimits,
    oidc,
    currentProvider: () => provider,
    enterprise,
  });

  /**
   * oidc-provider reads its signing keys once, at construction; a rotation made by another
   * process (`portcullis oauth signing-keys rotate`) is picked up by building a new instance
   * over the same store and configuration (all state lives in the adapter, so nothing is lost).
   */
  const buildProvider = (keys: SigningKey[]): OidcProvider => {
    const built = new oidc.default(issuer, { ...configuration, jwks: jwksOf(keys) });
    pinToIssuer(built, issuerUrl); // URLs from the issuer, never from the Host header
    reportUnauthorizedClient(built); // before callback(): Koa composes middleware there
    reportStoreOutage(built);
    built.on("grant.revoked", (_ctx, grantId) => {
      if (typeof grantId !== "string") return;
      tokens.noteRevoked(grantId);
    });
    built.on("server_error", (_ctx, error) => log.error({ err: error }, "authorization server error"));
    auditClientCredentials(built, issuer, environment, (record) => opts.audit.record(record));
    registerTokenExchange(built, {
      issuer,
      environment,
      resources: exchangeResources(opts.resources),
      oauthTokens: tokens,
      audit: (record) => opts.audit.record(record),
      services: () => taskServices,
    });
    enterprise?.register(built); // RFC 7523 jwt-bearer grant for ID-JAGs (./idJag.ts)
    return built;
  };

  /** RFC 8693 token exchange mints task tokens with these (./tokenExchange.ts); null: refused. */
  const taskServices: TaskExchangeServices | null =
    opts.tasks === undefined || opts.exchange === undefined
      ? null
      : { minter: opts.tasks, ender: opts.tasks, ...opts.exchange };
  /** Set by the store's change feed: some credential changed somewhere (grant revoked, keys rotated). */
  let credentialsChanged = false;
  const machineClients = new MachineClientRoster(opts.store, db, () => {
    credentialsChanged = true;
  });
  await machineClients.start();
  const tokens = new BuiltinTokenVerifier({
    issuer,
    environment,
    resources: new Set(resources.keys()),
    db,
    secret: opts.secret,
    artefactKeys: keys,
    keys: signingKeys,
    machineClients,
    accessTokenTtlSeconds: accessTtl,
    observeChanges: () => observeChanges(),
  });
  let provider = buildProvider(signingKeys);
  let providerCallback = provider.callback();

  const audit = signInAudit(opts.audit, environment, issuer);
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
          audit,
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
    audit,
  };

  /** Rebuilds the verification key set and the provider when the stored key set changed. */
  const keyRotation = await SigningKeyRotation.start(db, opts.secret, log, (reloaded) => {
    tokens.useKeys(reloaded);
    const next = buildProvider(reloaded);
    provider = next;
    providerCallback = next.callback();
    interactionDeps.provider = next;
    if (signInDeps !== null) signInDeps.provider = next;
  });

  /** Runs before every token check: a change anywhere empties the cache, so grants are re-read. */
  const observeChanges = (): Promise<void> | undefined => {
    const pending = machineClients.refresh();
    if (!credentialsChanged) return pending;
    credentialsChanged = false;
    tokens.forgetVerified();
    // The first check after a change waits for a rotation to be followed (a compromised key's
    // tokens must not pass even once); changes are rare, so this costs nothing in the steady state.
    return Promise.all([pending, keyRotation.follow()]).then(() => undefined);
  };

  const purgeTimer = setInterval(() => {
    purgeExpired(db).catch((err: unknown) => log.warn({ err }, "purging expired OAuth artefacts failed"));
  }, 10 * 60_000);
  purgeTimer.unref();

  const handle = routeAuthorizationServerRequest({
    log,
    signIn,
    interactions: interactionDeps,
    limits: abuseLimits,
    provider: () => providerCallback,
    beforeTokenRequest: observeChanges,
  });

  return {
    owns: ownsPath,
    handle,
    tokenVerifier: tokens,
    verifyAccessToken: (token, resource) => tokens.verify(token, resource),
    async close(): Promise<void> {
      clearInterval(purgeTimer);
      enterprise?.close();
      keyRotation.close();
      tokens.forgetVerified();
      await machineClients.close();
      await opts.counters?.close();
    },
  };
}
