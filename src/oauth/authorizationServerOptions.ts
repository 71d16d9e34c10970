/**
 * What the built-in authorization server is built from (./authorizationServer.ts), checked
 * once at startup: a bad issuer, resource or login setting fails with a message naming the
 * field (RFC 8414 §2: the issuer is an https URL without query or fragment; RFC 8707 §2: a
 * resource is an absolute URI without fragment). The upstream OpenID Provider is discovered
 * here too (OpenID Connect Discovery 1.0 §4), so a wrong upstream issuer fails early.
 */
import type { Logger } from "pino";
import type { RateLimitCounters } from "../store/rateLimitCounters.js";
import type { Store } from "../store/types.js";
import type { TaskEnder, TaskMinter } from "../tasks/types.js";
import type { AbuseLimitSettings } from "./abuseLimits.js";
import type { ResourceAccess } from "./consentSummary.js";
import type { ExchangeVerifiers } from "./exchangeTokens.js";
import { UPSTREAM_CALLBACK_PATH } from "./federatedSignIn.js";
import { type FederationConfig, FederationError, UpstreamLogin } from "./federation.js";
import type { EnterpriseOptions } from "./idJag.js";
import type { RegistrationLimits } from "./registration.js";
import type { AuthorizationServerAudit } from "./signInAudit.js";

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
  /**
   * Where token-endpoint, sign-in and consent decisions are audited: the gateway's chained
   * writer, never the store directly (an unchained row would fail `audit verify`); its
   * backlog bound refuses sign-ins it could not record.
   */
  audit: AuthorizationServerAudit;
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
  /**
   * Tasks (src/tasks/service.ts): what an RFC 8693 token exchange mints a task token with, and
   * what ends a task when its token is revoked (RFC 7009). Absent: no task tokens here.
   */
  tasks?: TaskMinter & TaskEnder;
  /** How a token exchange judges subject and actor tokens that are not this AS's own (./exchangeTokens.ts). */
  exchange?: ExchangeVerifiers;
  /** Enterprise-managed authorization (ID-JAG redeemed with the jwt-bearer grant, ./idJag.ts). Absent: off. */
  enterprise?: EnterpriseOptions;
}

/**
 * A client that is part of the gateway itself (the admin console): registered statically,
 * its redirect URI on the issuer's own origin, asking only for `openid` (no resource, no
 * access to an MCP endpoint) and never shown a consent page: the user signs in, nothing more.
 */
export interface FirstPartyClient {
  clientId: string;
  /** Its name on the sign-in page (`client_name`). */
  clientName: string;
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

export class AuthorizationServerConfigError extends Error {
  override name = "AuthorizationServerConfigError";
}

export function validateOptions(opts: AuthorizationServerOptions): URL {
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
  for (const idp of opts.enterprise?.idps ?? []) {
    for (const [field, value] of [
      ["issuer", idp.issuer],
      ["jwksUri", idp.jwksUri],
    ] as const) {
      const url = value === undefined ? null : URL.parse(value);
      if (value !== undefined && (url === null || (url.protocol !== "https:" && url.protocol !== "http:"))) {
        throw new AuthorizationServerConfigError(
          `enterprise.idps[].${field} must be an https URL, got ${value}`,
        );
      }
      if (url?.protocol === "http:" && opts.environment !== "dev") {
        throw new AuthorizationServerConfigError(
          `enterprise.idps[].${field} must be https outside the dev environment (MCP enterprise-managed authorization §7.3), got ${value}`,
        );
      }
    }
  }
  if (opts.secret.length < 32)
    throw new AuthorizationServerConfigError("the server secret must be at least 32 bytes");
  return issuer;
}

/** OpenID Connect Discovery of the upstream login provider, at startup so a wrong issuer fails early. */
export async function discoverUpstream(
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
