/**
 * The built-in authorization server (`oauth.mode: builtin`) as the config describes it: its
 * issuer is the gateway's public base URL, its resources are the gateway's MCP endpoints
 * (each with the scopes it asks for, shown on the consent page), and its sign-in options
 * have the upstream client secret read from its reference. A config the server refuses is a
 * config error (startup stops).
 */
import type { Logger } from "pino";
import { ConfigError, readSecret } from "../config/load.js";
import type { BuiltinOAuthConfig } from "../config/schema.js";
import { rateLimitCounters } from "../store/rateLimitCounters.js";
import type { Store } from "../store/types.js";
import type { TaskEnder, TaskMinter } from "../tasks/types.js";
import {
  type AuthorizationServer,
  AuthorizationServerConfigError,
  createAuthorizationServer,
  type FirstPartyClient,
  type LoginOptions,
} from "./authorizationServer.js";
import type { ExchangeVerifiers } from "./exchangeTokens.js";
import type { AuthorizationServerAudit } from "./signInAudit.js";

/** The built-in AS's sign-in options, the upstream client secret read from its reference. */
export function loginOptions(login: NonNullable<BuiltinOAuthConfig["login"]>): LoginOptions {
  const { upstream } = login;
  return {
    ...(login.localUsers === undefined ? {} : { localUsers: login.localUsers }),
    ...(upstream === undefined
      ? {}
      : {
          upstream: {
            ...(upstream.name === undefined ? {} : { name: upstream.name }),
            issuer: upstream.issuer,
            clientId: upstream.clientId,
            clientSecret: readSecret(upstream.clientSecret, "oauth.login.upstream.clientSecret"),
            scopes: upstream.scopes,
            claims: upstream.claims,
            allowInsecure: upstream.allowInsecureHttp,
          },
        }),
  };
}

/** What an MCP endpoint asks of a token: scopes for every request, and per tool. */
export interface ProtectedEndpoint {
  scopes: readonly string[];
  toolScopes: Readonly<Record<string, readonly string[]>>;
}

export interface BuiltinServerDeps {
  /** The gateway's public base URL: the issuer. */
  issuer: string;
  /** The MCP endpoints by server name (`<issuer>/mcp/<name>`). */
  endpoints: ReadonlyMap<string, ProtectedEndpoint>;
  store: Store;
  /** The store's spec: rate-limit counters are shared through it by replicas on PostgreSQL. */
  storeSpec: string;
  secret: Buffer;
  /** The gateway's chained audit writer. */
  audit: AuthorizationServerAudit;
  /** The admin console's client, when the console runs. */
  consoleClient: FirstPartyClient | null;
  log: Logger;
  /** Tasks, for the token exchange grant and the revocation of task tokens (src/tasks/service.ts). */
  tasks?: TaskMinter & TaskEnder;
  /** API keys, task tokens and JWT-SVIDs as token-exchange subjects (./exchangeTokens.ts). */
  exchange?: ExchangeVerifiers;
}

export async function startBuiltinAuthorizationServer(
  oauth: BuiltinOAuthConfig,
  environment: string,
  deps: BuiltinServerDeps,
): Promise<AuthorizationServer> {
  const { issuer } = deps;
  try {
    return await createAuthorizationServer({
      issuer,
      audit: deps.audit,
      resources: [...deps.endpoints].map(([name, e]) => ({
        url: `${issuer}/mcp/${name}`,
        scopes: [...new Set([...e.scopes, ...Object.values(e.toolScopes).flat()])],
        access: { scopes: e.scopes, tools: e.toolScopes },
      })),
      store: deps.store,
      secret: deps.secret,
      environment,
      accessTokenTtlSeconds: oauth.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: oauth.refreshTokenTtlSeconds,
      limits: oauth.limits,
      counters: rateLimitCounters(deps.storeSpec),
      registration: {
        maxRedirectUris: oauth.registration.maxRedirectUris,
        unusedClientTtlSeconds: Math.round(oauth.registration.unusedClientDays * 86_400),
      },
      ...(oauth.login === undefined ? {} : { login: loginOptions(oauth.login) }),
      ...(oauth.enterprise === undefined ? {} : { enterprise: oauth.enterprise }),
      ...(deps.consoleClient === null ? {} : { consoleClient: deps.consoleClient }),
      ...(deps.tasks === undefined ? {} : { tasks: deps.tasks }),
      ...(deps.exchange === undefined ? {} : { exchange: deps.exchange }),
      log: deps.log,
    });
  } catch (err) {
    if (err instanceof AuthorizationServerConfigError) throw new ConfigError(`oauth: ${err.message}`);
    throw err;
  }
}
