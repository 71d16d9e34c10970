/**
 * The HTTP adapter: one route per MCP endpoint (`/mcp/<server>`, MCP Streamable HTTP) handed
 * to the request pipeline (src/pipeline/), plus body limits, health, readiness, metrics, the
 * protected-resource metadata (RFC 9728), and the audit of bodies refused for their size.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { AuditWriter } from "../audit/writer.js";
import type { Keyring } from "../authn/keyring.js";
import type { OAuthRuntime } from "../authn/oauthToken.js";
import { watchFiles } from "../authn/spiffe/fileWatch.js";
import type { SpiffeRuntime } from "../authn/spiffe/runtime.js";
import { ListedTools } from "../classify/listedTools.js";
import type { Config } from "../config/schema.js";
import { errorReply, GatewayError, RpcCode } from "../core/errors.js";
import { CallerLimits, poolShareWarnings } from "../pipeline/callerLimits.js";
import type { Authorization, PipelineDeps, Route } from "../pipeline/deps.js";
import { Pipeline } from "../pipeline/index.js";
import type { ReviewGate } from "../review/gate.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { UpstreamHealth } from "../telemetry/upstreamHealth.js";
import { allowedHostnames, hostGuard, refuseForeignHost, routeHostGuard } from "./hostCheck.js";
import { servingTls } from "./servingTls.js";

export type { Authorization, Route };

export interface AppDeps {
  config: Config;
  authorization: Authorization;
  routes: Map<string, Route>;
  keyring: Keyring;
  audit: AuditWriter;
  metrics: Metrics;
  log: Logger;
  /** OAuth verification and the built-in authorization server, filled once the base URL is known. */
  oauth: OAuthRuntime;
  /** The public base URL (known once listening when the port is picked by the OS). */
  baseUrl(): string;
  ready(): boolean;
  /** Runtime review (src/review/): holds calls policy decides `review` for; null refuses them. */
  review?: ReviewGate | null;
  /** Each upstream's health, shown (state only) at GET /status. */
  health?: UpstreamHealth;
  /** Task-token and JWT-SVID verifiers (none by default). */
  bearers?: PipelineDeps["bearers"];
  /** Charges task tokens' call budgets (src/tasks/runtime.ts). */
  tasks?: PipelineDeps["tasks"];
  /** SPIFFE workload identity (`spiffe:` in the config): JWT-SVIDs and X.509-SVID client certificates. */
  spiffe?: SpiffeRuntime | null;
}

type McpRequest = FastifyRequest<{ Params: { server: string } }>;

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, routes, keyring, audit, metrics, log, oauth } = deps;
  const limits = new CallerLimits(config.limits);
  for (const warning of poolShareWarnings(config)) log.warn(warning);
  if (allowedHostnames(config) === null)
    log.warn(
      "listening on all interfaces without listen.allowedHosts or publicUrl: Host/Origin checks are off",
    );
  const pipeline = new Pipeline({
    environment: config.environment,
    routes,
    authorization: deps.authorization,
    keyring,
    audit,
    metrics,
    log,
    oauth,
    tasks: deps.tasks ?? null,
    bearers: {
      task: deps.bearers?.task ?? null,
      jwtSvid: deps.bearers?.jwtSvid ?? deps.spiffe?.jwtSvid ?? null,
    },
    peerIdentity: clientCertificates(config, deps.spiffe ?? null),
    oauthEnabled: config.oauth !== undefined,
    baseUrl: deps.baseUrl,
    hostCheck: hostGuard(config),
    limits,
    listedTools: new ListedTools(),
    review: deps.review ?? null,
  });
  const checkRouteHost = routeHostGuard(config);

  const app = Fastify({
    logger: false,
    bodyLimit: config.limits.bodyBytes,
    // Slow or stalled clients: Node checks request deadlines every connectionsCheckingInterval.
    serverFactory: (handler) =>
      listenerServer(
        config,
        {
          requestTimeout: config.limits.requestTimeoutMs,
          headersTimeout: Math.min(config.limits.requestTimeoutMs, 60_000),
          keepAliveTimeout: config.limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, config.limits.requestTimeoutMs),
        },
        (req, res) => {
          const foreignHost = checkRouteHost(req); // DNS rebinding and Host-built URLs, every route
          if (foreignHost !== null) return refuseForeignHost(res, foreignHost);
          // The built-in authorization server reads its own bodies: hand its routes over unparsed.
          const as = oauth.server;
          if (as !== null && !req.url?.startsWith("/mcp/")) {
            const path = (req.url ?? "/").split("?", 1)[0] as string;
            if (as.owns(path)) {
              as.handle(req, res);
              return;
            }
          }
          handler(req, res);
        },
      ),
    return503OnClosing: true,
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));

  const mcp =
    (method: "POST" | "GET" | "DELETE") =>
    (req: McpRequest, reply: FastifyReply): void | Promise<void> => {
      reply.hijack();
      const body = method === "POST" ? (typeof req.body === "string" ? req.body : "") : null;
      return pipeline.handle(
        method,
        req.params.server,
        req.headers,
        body,
        req.socket.remoteAddress ?? null,
        reply.raw,
      );
    };
  app.post("/mcp/:server", mcp("POST"));
  app.get("/mcp/:server", mcp("GET"));
  app.delete("/mcp/:server", mcp("DELETE"));

  if (config.oauth !== undefined) {
    // RFC 9728 §3: the path-inserted well-known URI for each resource, and the root one.
    const metadata = (server: string) => {
      const route = routes.get(server);
      const tools = Object.values(route?.toolScopes ?? {}).flat();
      return {
        resource: `${deps.baseUrl()}/mcp/${server}`,
        authorization_servers: oauth.authorizationServers,
        scopes_supported: [...new Set([...(route?.scopes ?? []), ...tools])].filter(
          (s) => s !== "offline_access",
        ),
        bearer_methods_supported: ["header"],
        resource_name: `Portcullis: ${server}`,
      };
    };
    app.get<{ Params: { server: string } }>(
      "/.well-known/oauth-protected-resource/mcp/:server",
      async (req, reply) => {
        if (!routes.has(req.params.server)) return reply.code(404).send({ error: "not_found" });
        return reply.header("cache-control", "public, max-age=300").send(metadata(req.params.server));
      },
    );
    app.get("/.well-known/oauth-protected-resource", async (_req, reply) => {
      const only = routes.size === 1 ? [...routes.keys()][0] : undefined;
      const doc = only
        ? metadata(only)
        : {
            resource: deps.baseUrl(),
            authorization_servers: oauth.authorizationServers,
            bearer_methods_supported: ["header"],
          };
      return reply.header("cache-control", "public, max-age=300").send(doc);
    });
  }

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const ok = deps.ready() && keyring.healthy();
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ready" : "not ready" });
  });
  // Unauthenticated like /readyz: each server's state and since when, never error text or stderr
  // (operators read those with `portcullis servers status` or the console's Servers page).
  app.get("/status", async (_req, reply) => {
    const servers: Record<string, { state: string; since: string | null }> = {};
    for (const [name, h] of Object.entries(deps.health?.snapshot() ?? {}))
      servers[name] = { state: h.state, since: h.since };
    const ready = deps.ready() && keyring.healthy();
    return reply.header("cache-control", "no-store").send({ status: ready ? "ready" : "not ready", servers });
  });
  app.get("/metrics", async (_req, reply) => {
    metrics.auditPending.set(audit.pending);
    metrics.storeReachable.set(keyring.healthy() ? 1 : 0);
    metrics.callsInFlight.set(limits.callsInFlight);
    metrics.openStreams.set(limits.openStreams);
    for (const [name, route] of routes)
      metrics.upstreamProcesses.set({ server: name }, route.upstream.processes());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.setNotFoundHandler((req, reply) => {
    const body = errorReply(
      new GatewayError(404, RpcCode.MethodNotFound, "Not found", `no route ${req.method} ${req.url}`),
    ).body;
    void reply.code(404).send(body);
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    let mapped: GatewayError | Error = err;
    if (status === 413) {
      // A body refused for its size (before the handler runs) is a decision too.
      const server = /^\/mcp\/([^/?#]+)/.exec(req.url)?.[1];
      const why = `request body larger than limits.bodyBytes (${config.limits.bodyBytes} bytes)`;
      const decisionId = server === undefined ? null : pipeline.recordOversized(server, req.headers, why);
      const data = decisionId === null ? undefined : { decisionId };
      mapped = new GatewayError(413, RpcCode.PayloadTooLarge, "Request body too large", err.message, data);
    } else if (status >= 400 && status < 500)
      mapped = new GatewayError(status, RpcCode.InvalidRequest, "Invalid Request", err.message);
    else log.error({ err, url: req.url }, "unhandled error");
    const r = errorReply(mapped);
    void reply.code(r.status).headers(r.headers).send(r.body);
  });
  return app;
}

interface ServerTimeouts {
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
}

/**
 * Plain HTTP (the default), or HTTPS with `listen.tls`. Client certificates (`clientAuth`) are
 * asked for in the handshake but judged per request against the SPIFFE bundles in force
 * (src/authn/spiffe/x509Svid.ts), so a rotated bundle needs no restart; `require` closes a
 * connection that presents none.
 */
function listenerServer(
  config: Config,
  timeouts: ServerTimeouts,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
) {
  const tls = config.listen.tls;
  if (tls === undefined) return createServer(timeouts, handle);
  const server = createHttpsServer(
    {
      ...timeouts,
      ...servingTls(tls),
      requestCert: tls.clientAuth !== "none",
      // The chain is checked against the SPIFFE bundle per request; the handshake proves key possession.
      rejectUnauthorized: false,
    },
    handle,
  );
  // A serving certificate rotated on disk (a SPIFFE helper renews the gateway's own SVID) is
  // used from the next handshake on; a half-written pair keeps the previous one.
  const files = [tls.cert, tls.key].flatMap((ref) => ("file" in ref ? [ref.file] : []));
  if (files.length > 0) {
    const watch = watchFiles(
      files,
      () => {
        try {
          server.setSecureContext(servingTls(tls));
        } catch {
          // cert and key do not match yet: the next change completes the pair
        }
      },
      2_000,
    );
    server.on("close", () => watch.close());
  }
  if (tls.clientAuth === "require")
    server.on("secureConnection", (socket: TLSSocket) => {
      if (socket.getPeerCertificate()?.raw === undefined) socket.destroy();
    });
  return server;
}

function clientCertificates(config: Config, spiffe: SpiffeRuntime | null): PipelineDeps["peerIdentity"] {
  const tls = config.listen.tls;
  if (tls === undefined || tls.clientAuth === "none" || spiffe === null) return null;
  return (socket) => spiffe.x509Svid.checkConnection(socket);
}
