/**
 * The composition root: builds a running gateway from a validated config, and only wires.
 * Each part is built, started in order, and its stop pushed onto one {@link Lifetime} as
 * soon as it runs, so `close()` stops the parts in reverse, and a startup that fails half-way
 * stops exactly what had started. What each part needs from the config is worked out in its
 * own module (config/derived.ts, forward/routes.ts, authz/policy/configured.ts,
 * oauth/builtinServer.ts, authn/oauthToken.ts `oauthRuntime`).
 *
 * Order: what the config decides (secrets, upstreams, policy) → the port, bound and answering
 * 503 (src/listener/startup.ts), which fixes the public base URL and so the OAuth issuer →
 * the store and what lives in it (keys, audit, tool pins, review) → OAuth, complete → the
 * listener, which takes the port over with every advertised endpoint working.
 */
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { policyChanged, toolChanged } from "./audit/records.js";
import { redactArguments } from "./audit/redact.js";
import { AuditWriter } from "./audit/writer.js";
import { Keyring } from "./authn/keyring.js";
import { oauthRuntime } from "./authn/oauthToken.js";
import { serverSecret } from "./authn/serverSecret.js";
import { startSpiffe, upstreamSvids } from "./authn/spiffe/runtime.js";
import { watchConfiguredPolicy } from "./authz/policy/configured.js";
import type { CompiledPolicy } from "./authz/policy/types.js";
import { ToolCatalogue } from "./authz/toolCatalogue.js";
import { toolChangeReporter } from "./authz/toolChanges.js";
import { consoleEnabled, publicBaseUrl } from "./config/derived.js";
import type { LoadedConfig } from "./config/load.js";
import { readSecret } from "./config/load.js";
import { registerConsole } from "./console/routes.js";
import { consoleClient } from "./console/signIn.js";
import { Lifetime } from "./core/lifetime.js";
import { closeRoutes, serverRoutes } from "./forward/routes.js";
import { SessionBindings } from "./forward/sessions.js";
import { watchUpstreams } from "./forward/upstreamChecks.js";
import { buildApp } from "./listener/app.js";
import { listenWhileStarting } from "./listener/startup.js";
import { startBuiltinAuthorizationServer } from "./oauth/builtinServer.js";
import { ReviewGate } from "./review/gate.js";
import { registerReviewLinkRoutes } from "./review/linkPages.js";
import { openStoreWhenReachable, storeDisplayName } from "./store/open.js";
import type { Store } from "./store/types.js";
import { startTasks } from "./tasks/runtime.js";
import { createMetrics } from "./telemetry/metrics.js";
import { storeOutageReporting } from "./telemetry/storeOutage.js";
import { UpstreamHealth } from "./telemetry/upstreamHealth.js";

export interface Gateway {
  url: string;
  port: number;
  store: Store;
  secret: Buffer;
  /** Stops every part in reverse order of start (src/core/lifetime.ts). */
  close(): Promise<void>;
}

/** How often key usage (last used) is written to the store. */
const KEY_USAGE_FLUSH_MS = 1000;

export async function startGateway(loaded: LoadedConfig, log: Logger): Promise<Gateway> {
  const { config, storeSpec } = loaded;
  const { environment } = config;
  const lifetime = new Lifetime((err, part) => log.error({ err, part }, `${part} did not stop cleanly`));
  return lifetime.starting(async () => {
    // What the config decides, first: a mistake in it (a secret that cannot be read, a policy
    // that does not compile) stops startup before anything listens.
    const withConsole = consoleEnabled(config);
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    const secret = serverSecret(config, { create: true });
    const webhookSecret = config.review.webhook
      ? readSecret(config.review.webhook.secret, "review.webhook.secret")
      : null;
    const sessions = lifetime.add(
      "sessions",
      new SessionBindings(undefined, undefined, config.limits.sessionsPerCaller),
    );
    // Stderr a server prints is masked as the audit log masks arguments (secretlint and more).
    const health = new UpstreamHealth(
      Object.keys(config.servers),
      log,
      async (lines) => (await redactArguments(lines)) as string[],
    );
    // SPIFFE workload identity (src/authn/spiffe/): trust bundles, JWT-SVID and X.509-SVID
    // verifiers, and the gateway's own X.509-SVID for upstreams marked tls.spiffe.
    const spiffe = config.spiffe
      ? lifetime.add("spiffe", await startSpiffe(config.spiffe, environment, log))
      : null;
    const svids = lifetime.add("upstream SVIDs", upstreamSvids(config, spiffe, log));
    const routes = serverRoutes(config, sessions, log, health, svids.byServer);
    lifetime.defer("upstreams", () => closeRoutes(routes));
    lifetime.add("upstream checks", watchUpstreams(routes, health, log));
    const metrics = createMetrics(routes.keys());
    /** Audited once the audit writer is open (below). */
    let recordPolicyChange: (next: CompiledPolicy) => void = () => {};
    const policy = lifetime.add(
      "policy watcher",
      watchConfiguredPolicy(loaded, metrics, log, (next) => recordPolicyChange(next)),
    );

    // The port, bound now: the base URL (the OAuth issuer) is known from here on, and the port
    // answers 503 while the store is awaited.
    const startup = await listenWhileStarting(config.listen.host, config.listen.port, config.listen.tls);
    const startupListener = lifetime.defer("startup listener", () => startup.close());
    const url = publicBaseUrl(config, startup.port);

    // The store, and what lives in it.
    const store = lifetime.add(
      "store",
      await openStoreWhenReachable(
        storeSpec,
        storeOutageReporting(metrics, log.child({ store: storeDisplayName(storeSpec) })),
      ),
    );
    health.publishTo(store, `${hostname()}:${startup.port}`);
    lifetime.add("upstream health", health);
    const keyring = new Keyring(store, secret, environment);
    await keyring.start();
    const usageTimer = setInterval(() => {
      keyring.flushUsage().catch((err: unknown) => log.warn({ err }, "could not record key usage"));
    }, KEY_USAGE_FLUSH_MS);
    usageTimer.unref();
    lifetime.defer("keyring", async () => {
      clearInterval(usageTimer);
      await keyring.flushUsage().catch(() => {});
      await keyring.close();
    });
    const audit = lifetime.add(
      "audit writer",
      await AuditWriter.open(
        store,
        log,
        { ...config.audit, environment, onWriteError: () => metrics.auditWriteErrors.inc() },
        secret,
      ),
    );
    const record = audit.record.bind(audit);
    recordPolicyChange = (next) => record(policyChanged(environment, next));
    const toolChanges = toolChangeReporter(
      (c) => record(toolChanged(environment, c, policy.current().version)),
      log,
    );
    const catalogue = lifetime.add(
      "tool catalogue",
      await ToolCatalogue.open(store, {
        onChange: config.pinning.onChange,
        operatorTiers: Object.fromEntries(Object.entries(config.servers).map(([name, s]) => [name, s.tools])),
        onStoreChange: toolChanges,
        onError: (err) => log.warn({ err }, "tool pin store: retrying"),
      }),
    );
    const review = new ReviewGate({
      store,
      config: config.review,
      environment,
      secret,
      log,
      record,
      baseUrl: () => url,
      webhookSecret,
    });
    review.start();
    lifetime.add("review", review);

    // Tasks: task tokens are verified here whatever the OAuth mode; the built-in authorization
    // server mints them by token exchange (src/tasks/runtime.ts).
    const tasks = lifetime.add(
      "tasks",
      await startTasks({
        store,
        secret,
        config: config.tasks,
        environment,
        issuer: url,
        servers: [...routes.keys()],
        policy: () => policy.current(),
        tools: catalogue,
        keyring,
        record,
        builtinOAuth: config.oauth?.mode === "builtin",
      }),
    );

    // OAuth, complete before the listener is built: nothing in it changes once requests are served.
    const authorizationServer =
      config.oauth?.mode === "builtin"
        ? lifetime.add(
            "authorization server",
            await startBuiltinAuthorizationServer(config.oauth, environment, {
              issuer: url,
              endpoints: routes,
              store,
              storeSpec,
              secret,
              audit,
              consoleClient: withConsole ? consoleClient(secret, url) : null,
              log,
              tasks: tasks.service,
              // Token-exchange subjects (src/oauth/exchangeTokens.ts): the request path's verifiers.
              exchange: { apiKeys: keyring, taskTokens: tasks.verifier, jwtSvid: spiffe?.jwtSvid ?? null },
            }),
          )
        : null;
    const oauth = oauthRuntime(
      config.oauth,
      environment,
      authorizationServer === null ? null : { server: authorizationServer, issuer: url },
    );

    // The listener. ---- buildApp's deps: the request pipeline's to change (merge here) ----
    let ready = true;
    const app = buildApp({
      config,
      authorization: {
        policy: () => policy.current(),
        tools: catalogue,
        observeTools: (server, tools) => toolChanges(catalogue.observe(server, tools).changed),
        blocked: (server, tool) => catalogue.blocked(server, tool),
      },
      routes,
      keyring,
      audit,
      metrics,
      log,
      oauth,
      baseUrl: () => url,
      ready: () => ready,
      review,
      health,
      bearers: { task: tasks.verifier, jwtSvid: spiffe?.jwtSvid ?? null },
      tasks: tasks.calls,
      spiffe,
    });
    // ---- end of buildApp's deps ----
    registerReviewLinkRoutes(app, review);
    if (withConsole)
      registerConsole(app, {
        config,
        store,
        secret,
        review,
        audit,
        policy: () => policy.current(),
        baseUrl: () => url,
        signInReady: () => oauth.server !== null,
        tasks: tasks.service,
        log,
      });
    // Every advertised endpoint works from the first request the real listener takes.
    await startupListener.dispose();
    lifetime.defer("listener", () => app.close());
    await app.listen({ host: config.listen.host, port: startup.port });
    // Stopping starts by saying so: /readyz answers 503 while in-flight requests finish.
    lifetime.defer("readiness", () => {
      ready = false;
    });
    log.info({ url, environment, servers: [...routes.keys()], store: store.kind }, "portcullis listening");
    return { url, port: startup.port, store, secret, close: () => lifetime.close() };
  });
}
