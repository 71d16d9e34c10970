/**
 * Assembles a running gateway from a validated config: store, keys, audit, upstreams and
 * the listener. Everything on the request path is built here, once.
 */
import { mkdirSync } from "node:fs";
import type { Logger } from "pino";
import { AuditWriter } from "./audit/writer.js";
import { Keyring } from "./authn/keyring.js";
import { type OAuthRuntime, OAuthTokenVerifier } from "./authn/oauthToken.js";
import { serverSecret } from "./authn/serverSecret.js";
import { configuredPolicyPaths } from "./authz/policy/defaultPack.js";
import { type CompiledPolicy, PolicyError } from "./authz/policy/types.js";
import { PolicyWatcher } from "./authz/policy/watch.js";
import { ToolCatalogue, type ToolChange } from "./authz/toolCatalogue.js";
import type { LoadedConfig } from "./config/load.js";
import { ConfigError, readSecret } from "./config/load.js";
import type { BuiltinOAuthConfig } from "./config/schema.js";
import { registerConsole } from "./console/routes.js";
import { consoleClient } from "./console/signIn.js";
import { outageReason } from "./core/outage.js";
import { HttpUpstream } from "./forward/http.js";
import { SessionBindings } from "./forward/sessions.js";
import { StdioUpstream } from "./forward/stdio/bridge.js";
import { type Authorization, buildApp, type Route } from "./listener/app.js";
import { listenWhileStarting } from "./listener/startup.js";
import {
  type AuthorizationServer,
  AuthorizationServerConfigError,
  createAuthorizationServer,
  type LoginOptions,
} from "./oauth/authorizationServer.js";
import { ReviewGate } from "./review/gate.js";
import { registerReviewLinkRoutes } from "./review/linkPages.js";
import { openStoreWhenReachable } from "./store/open.js";
import { rateLimitCounters } from "./store/rateLimitCounters.js";
import type { Store } from "./store/types.js";
import { createMetrics } from "./telemetry/metrics.js";
import { VERSION } from "./version.js";

export interface Gateway {
  url: string;
  port: number;
  store: Store;
  secret: Buffer;
  close(): Promise<void>;
}

function resolveValues(
  values: Record<string, string | { env: string } | { file: string }>,
  field: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values))
    out[k] = typeof v === "string" ? v : readSecret(v, `${field}.${k}`);
  return out;
}

/** The built-in AS's sign-in options, the upstream client secret read from its reference. */
function loginOptions(login: NonNullable<BuiltinOAuthConfig["login"]>): LoginOptions {
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

export async function startGateway(loaded: LoadedConfig, log: Logger): Promise<Gateway> {
  const { config, storeSpec } = loaded;
  // The admin console signs users in through the built-in authorization server (docs/console.md).
  const consoleEnabled = config.console.enabled ?? config.oauth?.mode === "builtin";
  if (consoleEnabled && config.oauth?.mode !== "builtin")
    throw new ConfigError(
      "console.enabled: the console needs oauth.mode: builtin (or set console.enabled: false)",
    );
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secret = serverSecret(config, { create: true });
  const reviewWebhookSecret = config.review.webhook
    ? readSecret(config.review.webhook.secret, "review.webhook.secret")
    : null;
  const sessions = new SessionBindings(undefined, undefined, config.limits.sessionsPerCaller);
  const routes = new Map<string, Route>();
  // Resolve every secret before anything starts, so a missing one fails startup.
  for (const [name, server] of Object.entries(config.servers)) {
    const upstream =
      server.transport === "http"
        ? new HttpUpstream(name, server, resolveValues(server.headers, `servers.${name}.headers`), sessions)
        : new StdioUpstream(
            name,
            server,
            resolveValues(server.env, `servers.${name}.env`),
            sessions,
            log,
            VERSION,
          );
    routes.set(name, {
      upstream,
      anonymous: server.anonymous,
      scopes: server.oauth.scopes,
      toolScopes: server.oauth.tools,
    });
  }
  const metrics = createMetrics(routes.keys());
  /** Set once the audit writer is open: every policy change becomes an audit record. */
  let auditPolicyChange: ((next: CompiledPolicy) => void) | null = null;
  // Policy first: a policy that does not compile stops startup before anything listens.
  let policy: PolicyWatcher;
  try {
    policy = new PolicyWatcher(configuredPolicyPaths(config.policy.paths, loaded.source), {
      // A file reverted to the policy in force compiles again without a new version.
      onValid: () => metrics.policyValid.set(1),
      onReload: (next) => {
        auditPolicyChange?.(next);
        log.info(
          { event: "policy.reloaded", version: next.version, rules: next.ruleCount },
          "policy reloaded",
        );
      },
      onError: (err) => {
        metrics.policyValid.set(0);
        metrics.policyReloadErrors.inc();
        log.error(
          { event: "policy.reload_refused", file: err.file, line: err.line, detail: err.detail },
          `policy change refused, the previous policy stays in force: ${err.message}`,
        );
      },
    });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(`policy: ${err.message}`);
    throw err;
  }
  metrics.policyValid.set(1);
  // Bind the port first: the base URL (and so the OAuth issuer) is then known before the
  // listener and the authorization server are built, and the port answers 503 while the store
  // is awaited (src/listener/startup.ts).
  const startup = await listenWhileStarting(config.listen.host, config.listen.port);
  const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
  const url =
    config.publicUrl?.replace(/\/$/, "") ??
    `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${startup.port}`;
  let lastOutageLog = 0;
  let store: Store;
  try {
    store = await openStoreWhenReachable(storeSpec, {
      onConnectionError: (err) => {
        metrics.storeConnectionErrors.inc();
        // One line per 10 s: a database restart must not flood the log.
        const now = Date.now();
        if (now - lastOutageLog < 10_000) return;
        lastOutageLog = now;
        log.warn(
          { event: "store.connection_lost", reason: outageReason(err) },
          "store connection lost: requests that need the store are answered 503 until it is back",
        );
      },
      onWaiting: (attempt, err, delayMs) =>
        log.warn(
          { event: "store.waiting", attempt, reason: outageReason(err), retryInMs: delayMs },
          "store unreachable at start: waiting for it (not ready meanwhile)",
        ),
    });
  } catch (err) {
    await startup.close();
    throw err;
  }
  const keyring = new Keyring(store, secret, config.environment);
  await keyring.start();
  const audit = await AuditWriter.open(
    store,
    log,
    {
      ...config.audit,
      environment: config.environment,
      onWriteError: () => metrics.auditWriteErrors.inc(),
    },
    secret,
  );
  auditPolicyChange = (next) =>
    audit.record({
      at: new Date(),
      environment: config.environment,
      principal: null,
      method: null,
      credentialId: null,
      server: null,
      rpcMethod: null,
      tool: null,
      decision: "allow",
      reason: `policy changed: version ${next.version}, ${next.ruleCount} rules`,
      latencyUs: 0,
      policyVersion: next.version,
      detail: { event: "policy.changed", sources: next.sources },
    });
  const auditToolChanges = (changes: readonly ToolChange[]) => {
    for (const c of changes) {
      const action = c.blocked ? "blocked until an operator accepts it" : "flagged";
      log.warn(
        { event: "tool.changed", server: c.server, tool: c.tool, fields: c.fields },
        `tool definition changed: ${action}`,
      );
      audit.record({
        at: c.at,
        environment: config.environment,
        principal: null,
        method: null,
        credentialId: null,
        server: c.server,
        rpcMethod: "tools/list",
        tool: c.tool,
        decision: c.blocked ? "deny" : "allow",
        reason: `tool definition changed since it was pinned (${c.fields.join(", ")}): ${action}`,
        latencyUs: 0,
        policyVersion: policy.current().version,
        detail: {
          event: "tool.changed",
          fields: c.fields,
          pinnedHash: c.pinnedHash,
          previousHash: c.previousHash,
          currentHash: c.currentHash,
        },
      });
    }
  };
  const catalogue = await ToolCatalogue.open(store, {
    onChange: config.pinning.onChange,
    operatorTiers: Object.fromEntries(Object.entries(config.servers).map(([name, s]) => [name, s.tools])),
    onStoreChange: auditToolChanges,
    onError: (err) => log.warn({ err }, "tool pin store: retrying"),
  });
  const authorization: Authorization = {
    policy: () => policy.current(),
    tools: catalogue,
    observeTools: (server, tools) => auditToolChanges(catalogue.observe(server, tools).changed),
    blocked: (server, tool) => catalogue.blocked(server, tool),
  };
  let closing = false;
  const review = new ReviewGate({
    store,
    config: config.review,
    environment: config.environment,
    secret,
    log,
    record: (entry) => audit.record(entry),
    baseUrl: () => baseUrl,
    webhookSecret: reviewWebhookSecret,
  });
  review.start();
  const oauth: OAuthRuntime = { verifier: null, authorizationServers: [], server: null };
  if (config.oauth?.mode === "external") {
    const { introspection } = config.oauth;
    oauth.verifier = new OAuthTokenVerifier(
      config.oauth,
      config.environment,
      introspection ? readSecret(introspection.clientSecret, "oauth.introspection.clientSecret") : null,
    );
    oauth.authorizationServers = [config.oauth.issuer];
  }
  const baseUrl = url;
  const app = buildApp({
    config,
    authorization,
    routes,
    keyring,
    audit,
    metrics,
    log,
    oauth,
    baseUrl: () => baseUrl,
    ready: () => !closing,
    review,
  });
  registerReviewLinkRoutes(app, review);
  if (consoleEnabled)
    registerConsole(app, {
      config,
      store,
      secret,
      review,
      audit,
      policy: () => policy.current(),
      baseUrl: () => baseUrl,
      signInReady: () => oauth.server !== null,
      log,
    });
  const usageTimer = setInterval(() => {
    keyring.flushUsage().catch((err: unknown) => log.warn({ err }, "could not record key usage"));
  }, 1000);
  usageTimer.unref();

  let authorizationServer: AuthorizationServer | null = null;
  if (config.oauth?.mode === "builtin") {
    // The issuer is the gateway's own base URL, known since the port was bound.
    try {
      authorizationServer = await createAuthorizationServer({
        issuer: url,
        audit: (record) => audit.record(record),
        resources: [...routes].map(([name, route]) => ({
          url: `${url}/mcp/${name}`,
          scopes: [...new Set([...route.scopes, ...Object.values(route.toolScopes).flat()])],
          access: { scopes: route.scopes, tools: route.toolScopes },
        })),
        store,
        secret,
        environment: config.environment,
        accessTokenTtlSeconds: config.oauth.accessTokenTtlSeconds,
        refreshTokenTtlSeconds: config.oauth.refreshTokenTtlSeconds,
        limits: config.oauth.limits,
        counters: rateLimitCounters(storeSpec),
        registration: {
          maxRedirectUris: config.oauth.registration.maxRedirectUris,
          unusedClientTtlSeconds: Math.round(config.oauth.registration.unusedClientDays * 86_400),
        },
        ...(config.oauth.login === undefined ? {} : { login: loginOptions(config.oauth.login) }),
        ...(consoleEnabled ? { consoleClient: consoleClient(secret, url) } : {}),
        log,
      });
    } catch (err) {
      await startup.close();
      await store.close();
      if (err instanceof AuthorizationServerConfigError) throw new ConfigError(`oauth: ${err.message}`);
      throw err;
    }
    const as = authorizationServer;
    oauth.server = as;
    oauth.verifier = as.tokenVerifier;
    oauth.authorizationServers = [url];
  }
  // Every advertised endpoint works from the first request the real listener takes.
  await startup.close();
  await app.listen({ host: config.listen.host, port: startup.port });
  log.info(
    { url, environment: config.environment, servers: [...routes.keys()], store: store.kind },
    "portcullis listening",
  );

  return {
    url,
    port: startup.port,
    store,
    secret,
    async close() {
      closing = true;
      clearInterval(usageTimer);
      await app.close();
      await review.close();
      await Promise.all([...routes.values()].map((r) => r.upstream.close()));
      await authorizationServer?.close();
      sessions.close();
      policy.close();
      await catalogue.close();
      await audit.close();
      await keyring.flushUsage().catch(() => {});
      await keyring.close();
      await store.close();
    },
  };
}
