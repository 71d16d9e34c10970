/**
 * Enterprise-managed authorization at the built-in authorization server: the RFC 7523 §2.1
 * JWT bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`) redeeming an
 * Identity Assertion JWT Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-
 * authz-grant §4.4; MCP extension "Enterprise-Managed Authorization" §5) issued by a trusted
 * enterprise IdP. Registered with oidc-provider (`registerGrantType`) only when
 * `oauth.enterprise` is configured, so only then is it advertised (`grant_types_supported`,
 * and `authorization_grant_profiles_supported` with the id-jag profile, §6).
 *
 * Who may redeem: machine clients (`portcullis clients create`, ./machineClients.ts),
 * authenticated at the token endpoint as usual (private_key_jwt or client_secret_basic), and
 * per IdP only those it lists in `clients`. A public client cannot prove it is the `client_id`
 * the ID-JAG names, so a stolen assertion would be a bearer token for anyone: those clients
 * get `unauthorized_client` (./unauthorizedClient.ts).
 *
 * Checks, in order (./idJagVerification.ts for the assertion itself): `typ`, issuer trusted,
 * signature, `aud` = our issuer, times and bounded lifetime; then `client_id` = the
 * authenticated client (constant time), the IdP allows this client, `resource` = one of our
 * MCP endpoints (and equal to the request's `resource`, if sent), the client may reach that
 * endpoint, scopes; then the `jti` is claimed once across replicas (./assertionReplay.ts).
 *
 * The subject becomes the same local account a federated sign-in through that IdP makes
 * (`fed:<issuer hash>#<sub>`, ./federatedSignIn.ts), its email and groups refreshed from the
 * ID-JAG's `email` and `groups` claims; a disabled account is refused. No consent screen:
 * the IdP's policy decided (§4.1). A Grant is created programmatically for (account,
 * client), living as long as the one access token it carries, so revoking the account's
 * grants (`portcullis users revoke`, the console) ends the token at once, and
 * BuiltinTokenVerifier accepts the token at the MCP endpoint like any other. No refresh
 * token: the client redeems a fresh ID-JAG. Every decision is an audit record (./idJagAudit.ts).
 *
 * Scopes (§7.2.1): the token gets the intersection of the scopes the request names (all, if
 * none), those in the ID-JAG (no narrowing when it has no `scope` claim), the endpoint's and
 * the machine client's; an ID-JAG scope the endpoint does not know is `invalid_grant` (§7.6.2).
 */
import { timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import type { AdapterPayload, OidcAdapter, OidcAdapterClass } from "./adapter.js";
import { AssertionReplayStore } from "./assertionReplay.js";
import type { OAuthDatabase } from "./database.js";
import { type EnterpriseIdpSettings, type TrustedIdp, trustedIdps } from "./enterpriseIdps.js";
import { upsertFederatedUser } from "./federatedSignIn.js";
import { auditIdJag, type IdJagAuditWriter } from "./idJagAudit.js";
import {
  CLOCK_TOLERANCE_SECONDS,
  type IdJagClaims,
  IdJagRejected,
  verifyIdJag,
} from "./idJagVerification.js";
import { findMachineClient, isMachineClientId } from "./machineClients.js";
import type { OidcClient, OidcProvider, OidcProviderModule, OidcTokenContext } from "./oidcProvider.js";

export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
export const ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag";
/** Expired replay rows are deleted this often. */
const PURGE_INTERVAL_MS = 60_000;

export interface EnterpriseOptions {
  idps: Array<Omit<EnterpriseIdpSettings, "clients"> & { clients?: readonly string[] }>;
  /** Longest ID-JAG lifetime accepted (`exp − iat`). */
  maxAssertionLifetimeSeconds: number;
}

export interface IdJagGrantSettings {
  issuer: string;
  environment: string;
  db: Kysely<OAuthDatabase>;
  /** The MCP endpoints (exact URLs) and the scopes each supports. */
  resources: ReadonlyMap<string, string[]>;
  accessTokenTtlSeconds: number;
  enterprise: EnterpriseOptions;
  errors: OidcProviderModule["errors"];
  audit: IdJagAuditWriter;
  now?: () => number;
}

export interface IdJagGrant {
  /** Registers the grant with a (re)built provider; one line where grants are registered. */
  register(provider: OidcProvider): void;
  /** Extra authorization server metadata (oidc-provider `discovery`). */
  readonly discovery: Record<string, unknown>;
  /** Lets machine clients use the grant (oidc-provider checks the client's `grant_types`). */
  withClients(Base: OidcAdapterClass): OidcAdapterClass;
  close(): void;
}

/** A request that passed every check: who, for which endpoint, with which scopes. */
interface Admitted {
  claims: IdJagClaims;
  accountId: string;
  resource: string;
  scopes: string[];
  endpointScopes: string[];
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const split = (scope: unknown): string[] | null =>
  typeof scope === "string" && scope.trim() !== "" ? scope.split(" ").filter(Boolean) : null;

export function idJagGrant(settings: IdJagGrantSettings): IdJagGrant {
  const { issuer, db, resources, errors } = settings;
  const now = settings.now ?? Date.now;
  const accessTtl = settings.accessTokenTtlSeconds;
  const idps: ReadonlyMap<string, TrustedIdp> = trustedIdps(
    settings.enterprise.idps.map((idp) => ({
      issuer: idp.issuer,
      ...(idp.jwksUri === undefined ? {} : { jwksUri: idp.jwksUri }),
      clients: idp.clients === undefined ? null : new Set(idp.clients),
      algorithms: idp.algorithms,
    })),
    settings.environment,
  );
  const replay = new AssertionReplayStore(db, now);
  const purge = setInterval(() => {
    replay.purgeExpired().catch(() => undefined); // retried next minute; claim() reclaims expired rows itself
  }, PURGE_INTERVAL_MS);
  purge.unref();

  /** The client-, resource- and scope-checks after the assertion verified; returns the scopes to grant. */
  const decide = async (
    claims: IdJagClaims,
    client: OidcClient,
    params: Record<string, unknown>,
  ): Promise<{ resource: string; scopes: string[]; endpointScopes: string[] }> => {
    if (!sameString(claims.clientId, client.clientId)) {
      throw new IdJagRejected(
        "invalid_grant",
        `the ID-JAG was issued for client ${JSON.stringify(claims.clientId)}, not the authenticated client ${client.clientId}`,
      );
    }
    const allowed = idps.get(claims.issuer)?.clients;
    if (allowed !== null && allowed !== undefined && !allowed.has(client.clientId)) {
      throw new IdJagRejected(
        "unauthorized_client",
        `client ${client.clientId} is not among the clients allowed for ${claims.issuer}`,
      );
    }
    const resource = claims.resource;
    if (resource === null) throw new IdJagRejected("invalid_grant", "the ID-JAG names no resource");
    const endpointScopes = resources.get(resource);
    if (endpointScopes === undefined) {
      throw new IdJagRejected(
        "invalid_grant",
        `the ID-JAG's resource ${JSON.stringify(resource.slice(0, 300))} is not an MCP endpoint of this gateway`,
      );
    }
    if (params.resource !== undefined && params.resource !== resource) {
      throw new IdJagRejected(
        "invalid_target",
        `the requested resource ${JSON.stringify(String(params.resource).slice(0, 300))} differs from the ID-JAG's ${resource}`,
      );
    }
    const machine = await findMachineClient(db, client.clientId);
    if (machine === undefined || !machine.servers.some((s) => `${issuer}/mcp/${s}` === resource)) {
      throw new IdJagRejected(
        "invalid_target",
        `client ${client.clientId} may not obtain tokens for ${resource}`,
      );
    }
    const unknown = (claims.scopes ?? []).filter((s) => !endpointScopes.includes(s));
    if (unknown.length > 0) {
      throw new IdJagRejected(
        "invalid_grant",
        `the ID-JAG's scope ${JSON.stringify(unknown.join(" ").slice(0, 300))} is not a scope of ${resource}`,
      );
    }
    const requested = split(params.scope);
    const fromIdp = new Set(claims.scopes ?? endpointScopes);
    const clientScopes = new Set(machine.scopes);
    const scopes = (requested ?? endpointScopes).filter(
      (s) => endpointScopes.includes(s) && fromIdp.has(s) && clientScopes.has(s),
    );
    if (scopes.length === 0) {
      throw new IdJagRejected(
        "invalid_scope",
        `no scope remains: requested ${requested?.join(" ") ?? "(none)"}, ID-JAG ${claims.scopes?.join(" ") ?? "(none)"}, client ${machine.scopes.join(" ")}`,
      );
    }
    return { resource, scopes: [...new Set(scopes)], endpointScopes };
  };

  const toOidcError = (err: IdJagRejected): Error => {
    switch (err.code) {
      case "invalid_target":
        return new errors.InvalidTarget(
          "the resource does not match the assertion or may not be requested",
          err.reason,
        );
      case "invalid_scope":
        return new errors.InvalidScope("none of the requested scopes may be granted", undefined, err.reason);
      case "unauthorized_client":
        return new errors.UnauthorizedClient(
          "this client may not redeem assertions from this issuer",
          err.reason,
        );
      default:
        return new errors.InvalidGrant(err.reason);
    }
  };

  const audit = auditIdJag(settings.audit, settings.environment, issuer);

  /** Everything that may refuse the request, in order; the first failure is an IdJagRejected. */
  async function admit(ctx: OidcTokenContext, client: OidcClient, assertion: string): Promise<Admitted> {
    const params = ctx.oidc.params ?? {};
    const claims = await verifyIdJag(assertion, {
      audience: issuer,
      idps,
      maxLifetimeSeconds: settings.enterprise.maxAssertionLifetimeSeconds,
      now,
    });
    audit.noteAssertion(ctx, claims);
    const decided = await decide(claims, client, params);
    // Claimed last, once everything else holds: a refused request does not use the assertion up.
    if (
      !(await replay.claim(claims.issuer, claims.jti, (claims.expiresAt + CLOCK_TOLERANCE_SECONDS) * 1000))
    ) {
      throw new IdJagRejected(
        "invalid_grant",
        `the ID-JAG's jti was already redeemed (replay) from ${claims.issuer}`,
      );
    }
    const accountId = await upsertFederatedUser(
      db,
      {
        id: `${claims.issuer}#${claims.subject}`,
        subject: claims.subject,
        email: claims.email,
        groups: claims.groups,
        issuer: claims.issuer,
      },
      now(),
    );
    if (accountId === null) {
      throw new IdJagRejected(
        "invalid_grant",
        `the account of ${claims.subject} at ${claims.issuer} is disabled`,
      );
    }
    return { claims, accountId, ...decided };
  }

  /** A Grant for (account, client) carrying one access token bound to the resource; no consent screen. */
  async function issue(
    ctx: OidcTokenContext,
    provider: OidcProvider,
    client: OidcClient,
    admitted: Admitted,
  ): Promise<void> {
    const { claims, accountId, resource, scopes, endpointScopes } = admitted;
    const scope = scopes.join(" ");
    // The grant lives as long as its one access token (a little longer, for clock skew).
    const grant = new provider.Grant({ accountId, clientId: client.clientId, expiresIn: accessTtl + 60 });
    grant.addResourceScope(resource, scope);
    const grantId = await grant.save();
    const token = new provider.AccessToken({
      accountId,
      client,
      grantId,
      gty: "jwt_bearer",
      scope,
      expiresWithSession: false,
      resourceServer: new provider.ResourceServer(resource, {
        scope: endpointScopes.join(" "),
        audience: resource,
        accessTokenTTL: accessTtl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      }),
    });
    ctx.oidc.entity("AccessToken", token);
    const value = await token.save();
    audit.issued(ctx, { claims, accountId, resource, scope });
    ctx.body = { access_token: value, token_type: token.tokenType, expires_in: token.expiration, scope };
  }

  /** The token endpoint's handler for the grant: the client is already authenticated. */
  async function handler(ctx: OidcTokenContext, provider: OidcProvider): Promise<void> {
    const client = ctx.oidc.client;
    if (client === undefined) throw new errors.InvalidRequest("client authentication is required");
    const assertion = ctx.oidc.params?.assertion;
    if (typeof assertion !== "string" || assertion === "") {
      throw new errors.InvalidRequest("missing required parameter 'assertion'");
    }
    let admitted: Admitted;
    try {
      admitted = await admit(ctx, client, assertion);
    } catch (err) {
      if (err instanceof IdJagRejected) throw toOidcError(err);
      throw err; // a fault (store down, …): a 500, never disguised as a refusal
    }
    await issue(ctx, provider, client, admitted);
  }

  return {
    discovery: { authorization_grant_profiles_supported: [ID_JAG_PROFILE] },
    register(provider: OidcProvider): void {
      provider.registerGrantType(JWT_BEARER_GRANT, (ctx) => handler(ctx, provider), [
        "assertion",
        "scope",
        "resource",
      ]);
      audit.listen(provider);
    },
    withClients(Base: OidcAdapterClass): OidcAdapterClass {
      return class IdJagClientAdapter extends (Base as new (model: string) => OidcAdapter) {
        constructor(private readonly modelName: string) {
          super(modelName);
        }

        override async find(id: string): Promise<AdapterPayload | undefined> {
          const found = await super.find(id);
          if (this.modelName !== "Client" || found === undefined || !isMachineClientId(id)) return found;
          const grantTypes = Array.isArray(found.grant_types) ? found.grant_types.map(String) : [];
          return { ...found, grant_types: [...new Set([...grantTypes, JWT_BEARER_GRANT])] };
        }
      };
    },
    close(): void {
      clearInterval(purge);
    },
  };
}
