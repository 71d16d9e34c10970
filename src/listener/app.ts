/**
 * The HTTP listener: one route per MCP endpoint (`/mcp/<server>`, MCP Streamable HTTP),
 * health, readiness and metrics. The pipeline per request is fixed at startup:
 * authenticate → classify → check mirrored headers → authorize (scope) → forward, and
 * every decision becomes one audit record.
 */
import { randomBytes } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { AuditWriter } from "../audit/writer.js";
import { type AuthnResult, anonymousPrincipal, authenticate } from "../authn/authenticate.js";
import type { Keyring } from "../authn/keyring.js";
import type { OAuthRuntime } from "../authn/oauthToken.js";
import {
  authorizeRequest,
  entryVisible,
  type RequestContext,
  type ToolFactsSource,
} from "../authz/authorize.js";
import { missingScopes } from "../authz/oauthScopes.js";
import type { CompiledPolicy, PolicyDecision, RiskTier } from "../authz/policy/types.js";
import { checkMirroredHeaders } from "../classify/headers.js";
import { ListedTools } from "../classify/listedTools.js";
import { type ClassifiedMessage, classifyMessage } from "../classify/message.js";
import { checkParamHeaders } from "../classify/paramHeaders.js";
import type { Config } from "../config/schema.js";
import {
  errorReply,
  forbidden,
  GatewayError,
  insufficientScope,
  type JsonRpcId,
  missingCredential,
  policyRefusal,
  RpcCode,
  storeUnavailable,
  unauthorized,
} from "../core/errors.js";
import type { Principal } from "../core/principal.js";
import { allowsServer, allowsTool, restrictsTools } from "../core/scope.js";
import { isListMethod } from "../forward/results.js";
import type { ListFilter, Upstream } from "../forward/upstream.js";
import type { ReviewGate } from "../review/gate.js";
import type { AuditRecord } from "../store/types.js";
import { type Metrics, methodLabel, outcomeLabel } from "../telemetry/metrics.js";
import { allowedHostnames, hostGuard, refuseForeignHost, routeHostGuard } from "./hostCheck.js";
import { CallerLimits, limitOf, poolShareWarnings } from "./limits.js";

export interface Route {
  upstream: Upstream;
  anonymous: boolean;
  /** OAuth scopes every request needs, and per-tool additions. */
  scopes: readonly string[];
  toolScopes: Readonly<Record<string, readonly string[]>>;
}

/** Request-time authorization: the policy in force and what is known of each server's tools. */
export interface Authorization {
  /** The current compiled policy (hot-reloaded). */
  policy(): CompiledPolicy;
  tools: ToolFactsSource;
  /** Sees the tool definitions of a tools/list result (tool pinning). */
  observeTools(server: string, tools: readonly unknown[]): void;
  /** True while a changed tool waits for an operator's acceptance (pinning.onChange: block). */
  blocked(server: string, tool: string): boolean;
}

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
}

/** Methods that stay within a tool-scoped key's reach (lists are filtered for it). */
const TOOL_SCOPED_METHODS = new Set([
  "initialize",
  "ping",
  "server/discover",
  "tools/list",
  "tools/call",
  "completion/complete",
  "logging/setLevel",
]);

interface Decision {
  principal: Principal | null;
  server: string;
  msg: ClassifiedMessage | null;
  started: number;
  /** Set once policy decided: what the audit record and the client's error carry. */
  policy?: { decisionId: string; ruleIds: string[]; version: string };
}

/** A short id the client is given with a refusal and the operator finds in the audit log. */
function newDecisionId(): string {
  return randomBytes(9).toString("base64url");
}

function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, routes, keyring, audit, metrics, log, authorization } = deps;
  const environment = config.environment;
  const anonymous = anonymousPrincipal(environment);
  const { oauth } = deps;
  const oauthEnabled = config.oauth !== undefined;
  const resourceUrl = (server: string) => `${deps.baseUrl()}/mcp/${server}`;
  const prmUrl = (server: string) => `${deps.baseUrl()}/.well-known/oauth-protected-resource/mcp/${server}`;
  /** RFC 9728 §5.1 / MCP authorization: where to find the metadata, and what to ask for. */
  const challengeParams = (server: string, route: Route | undefined) =>
    `resource_metadata="${prmUrl(server)}"${route ? `, scope="${route.scopes.join(" ")}"` : ""}`;
  const checkHost = hostGuard(config);
  const limits = new CallerLimits(config.limits);
  for (const warning of poolShareWarnings(config)) log.warn(warning);
  /** Tools and `x-mcp-header` parameters learnt from relayed tools/list results. */
  const listedTools = new ListedTools();
  const checkRouteHost = routeHostGuard(config);
  if (allowedHostnames(config) === null)
    log.warn(
      "listening on all interfaces without listen.allowedHosts or publicUrl: Host/Origin checks are off",
    );

  const app = Fastify({
    logger: false,
    bodyLimit: config.limits.bodyBytes,
    // Slow or stalled clients: Node checks request deadlines every connectionsCheckingInterval.
    serverFactory: (handler) =>
      createServer(
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

  function auditEntry(
    d: Decision,
    decision: "allow" | "deny" | "review",
    reason: string,
    detail: Record<string, unknown> | null,
    credentialId?: string | null,
  ): AuditRecord {
    const params = d.msg?.message.params;
    return {
      at: new Date(),
      environment,
      principal: d.principal?.id ?? null,
      method: d.principal?.method ?? null,
      credentialId: d.principal?.credentialId ?? credentialId ?? null,
      server: d.server,
      rpcMethod: d.msg?.method ?? null,
      tool: d.msg?.name ?? null,
      decision,
      reason,
      latencyUs: Math.round((performance.now() - d.started) * 1000),
      detail,
      decisionId: d.policy?.decisionId ?? null,
      ruleIds: d.policy?.ruleIds ?? null,
      // Every record names the policy in force, also for refusals decided before policy ran.
      policyVersion: d.policy?.version ?? authorization.policy().version,
      // Raw here; the writer redacts (secrets masked, large values hashed) when it writes.
      arguments:
        params !== null && typeof params === "object"
          ? (params as Record<string, unknown>).arguments
          : undefined,
    };
  }

  function auditDecision(
    d: Decision,
    decision: "allow" | "deny" | "review",
    reason: string,
    detail: Record<string, unknown> | null,
    credentialId?: string | null,
  ): void {
    audit.record(auditEntry(d, decision, reason, detail, credentialId));
  }

  function finish(d: Decision, outcome: string): void {
    // Labels from bounded sets only: the URL's server name is not a label until it is configured.
    const server = metrics.serverLabel(d.server);
    const method = methodLabel(d.msg?.method ?? null);
    metrics.requests.inc({ server, method, outcome: outcomeLabel(outcome) });
    metrics.duration.observe({ server, method }, (performance.now() - d.started) / 1000);
  }

  function refuse(d: Decision, res: ServerResponse, err: unknown, id: JsonRpcId = null): void {
    const reply = errorReply(err, id);
    if (reply.status === 500) log.error({ err, server: d.server }, "unexpected error on the request path");
    const limit = limitOf(err);
    if (limit !== null) metrics.limitRefusals.inc({ limit });
    if (!res.headersSent) {
      const body = JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        ...reply.headers,
      });
      res.end(body);
    } else {
      res.destroy();
    }
    finish(d, String(reply.status));
  }

  /** Authenticates, failing closed on any error; returns null after replying with a refusal. */
  async function authenticated(
    req: FastifyRequest,
    res: ServerResponse,
    d: Decision,
    route: Route | undefined,
  ): Promise<Principal | null> {
    // The trail cannot take more (the store has been failing): refuse before any work, so
    // nothing is forwarded unrecorded and memory stays bounded; the writer counts these.
    if (!audit.accepting()) {
      audit.noteUnrecorded();
      metrics.auditBacklogRefusals.inc();
      refuse(d, res, storeUnavailable("audit backlog full"));
      return null;
    }
    const problem = checkHost(req.headers);
    if (problem) {
      auditDecision(d, "deny", problem, null);
      refuse(d, res, forbidden(problem));
      return null;
    }
    try {
      const pending = keyring.refresh();
      if (pending) await pending;
    } catch (err) {
      log.error({ err }, "cannot refresh keys from the store: failing closed");
      auditDecision(d, "deny", "key store unavailable: failing closed", null);
      refuse(d, res, storeUnavailable("key store unavailable"));
      return null;
    }
    let result: AuthnResult;
    try {
      const pendingAuth = authenticate(
        req.headers,
        keyring,
        route?.anonymous ? anonymous : null,
        oauth.verifier,
        resourceUrl(d.server),
      );
      result = pendingAuth instanceof Promise ? await pendingAuth : pendingAuth;
    } catch (err) {
      auditDecision(d, "deny", "authentication failed unexpectedly: failing closed", null);
      refuse(d, res, err);
      return null;
    }
    // "Cannot know" is not "unknown": a 401 would make an OAuth client discard a valid token.
    if (!result.ok && result.unavailable) {
      auditDecision(d, "deny", `${result.reason}: failing closed`, null, result.credentialId);
      refuse(d, res, storeUnavailable(result.reason));
      return null;
    }
    if (!result.ok) {
      auditDecision(d, "deny", result.reason, result.detail ?? null, result.credentialId);
      const challenge = oauthEnabled ? challengeParams(d.server, route) : "";
      refuse(d, res, result.missing ? missingCredential(challenge) : unauthorized(result.reason, challenge));
      return null;
    }
    d.principal = result.principal;
    if (!route) {
      auditDecision(d, "deny", "unknown server", null);
      refuse(
        d,
        res,
        new GatewayError(404, RpcCode.MethodNotFound, "Unknown MCP server", `no server named ${d.server}`),
      );
      return null;
    }
    if (!allowsServer(result.principal.scopes, d.server)) {
      auditDecision(d, "deny", `server ${d.server} is outside the credential's scope`, null);
      refuse(d, res, forbidden(`server ${d.server} outside scope`));
      return null;
    }
    return result.principal;
  }

  async function post(
    req: FastifyRequest<{ Params: { server: string } }>,
    reply: FastifyReply,
  ): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    const d: Decision = { principal: null, server: req.params.server, msg: null, started: performance.now() };
    const route = routes.get(d.server);
    const principal = await authenticated(req, res, d, route);
    if (!principal || !route) return;
    let msg: ClassifiedMessage;
    let upstreamParams: Record<string, string> = {};
    try {
      const type = req.headers["content-type"] ?? "";
      if (!/^application\/json\b/i.test(type)) {
        throw new GatewayError(
          415,
          RpcCode.InvalidRequest,
          "Unsupported Media Type: use application/json",
          `content-type ${type}`,
        );
      }
      msg = classifyMessage(typeof req.body === "string" ? req.body : "");
      d.msg = msg;
      checkMirroredHeaders(req.headers, msg);
      upstreamParams = checkParamHeaders(req.headers, msg, listedTools.bindings(d.server, msg.name ?? ""));
      // JSON-RPC 2.0 §4.1: a server runs a request without an id (a notification) and does not
      // reply. Only notifications/* may go without one; anything else would skip policy.
      if (msg.kind === "notification" && !msg.method?.startsWith("notifications/")) {
        throw new GatewayError(
          400,
          RpcCode.InvalidRequest,
          "Invalid Request",
          `${msg.method} sent without an id: only notifications/* may be sent as notifications`,
        );
      }
    } catch (err) {
      auditDecision(d, "deny", err instanceof GatewayError ? err.reason : "classification failed", null);
      refuse(d, res, err);
      return;
    }
    // One caller cannot hold more than its share of an upstream (limits.callsInFlightPerCaller).
    const slot = limits.call(principal.id, d.server);
    if (slot instanceof GatewayError) {
      auditDecision(d, "deny", slot.reason, { event: "limit.calls_in_flight" });
      refuse(d, res, slot, msg.id);
      return;
    }
    res.once("close", slot);
    const scopes = principal.scopes;
    if (msg.kind === "request" && msg.method !== null && restrictsTools(scopes, d.server)) {
      if (msg.method === "tools/call" && !allowsTool(scopes, d.server, msg.name as string)) {
        auditDecision(d, "deny", `tool ${msg.name} is outside the credential's scope`, null);
        refuse(d, res, forbidden("tool outside scope"), msg.id);
        return;
      }
      if (!TOOL_SCOPED_METHODS.has(msg.method)) {
        auditDecision(
          d,
          "deny",
          `${msg.method} needs a server-wide scope; the credential is scoped to tools`,
          null,
        );
        refuse(d, res, forbidden("method outside scope"), msg.id);
        return;
      }
    }
    if (principal.oauthScopes !== null && msg.kind === "request") {
      const required =
        msg.method === "tools/call"
          ? [...route.scopes, ...(route.toolScopes[msg.name as string] ?? [])]
          : route.scopes;
      const missing = missingScopes(principal.oauthScopes, required);
      if (missing.length > 0) {
        auditDecision(d, "deny", `token lacks scope(s) ${missing.join(" ")}`, { required });
        refuse(
          d,
          res,
          insufficientScope(required, `token lacks ${missing.join(" ")}`, prmUrl(d.server)),
          msg.id,
        );
        return;
      }
    }
    const ctx: RequestContext = {
      environment,
      sourceAddress: req.socket.remoteAddress ?? null,
      protocolVersion: msg.metaProtocolVersion ?? headerValue(req.headers["mcp-protocol-version"]),
      now: new Date(),
    };
    const policy = authorization.policy();
    let reason = "credential valid and in scope";
    /** The target tool's risk tier: write and destructive calls are recorded durably before forwarding. */
    let tier: RiskTier | null = null;
    /** Where the reply goes: the client's response, or the stream of a call held for review. */
    let out: ServerResponse = res;
    let reviewed = false;
    if (msg.kind === "request" && msg.method !== null) {
      const decisionId = newDecisionId();
      if (msg.method === "tools/call" && authorization.blocked(d.server, msg.name as string)) {
        d.policy = { decisionId, ruleIds: [], version: policy.version };
        const why = `tool ${msg.name} changed since it was pinned; blocked until an operator accepts it`;
        auditDecision(d, "deny", why, null);
        refuse(d, res, policyRefusal("tool-changed", decisionId, why), msg.id);
        return;
      }
      let decision: PolicyDecision;
      try {
        const authz = authorizeRequest(policy, principal, d.server, msg, authorization.tools, ctx);
        decision = authz.decision;
        tier = authz.resource.tier;
      } catch (err) {
        // Fail closed: a fault in policy evaluation is a refusal (and a 500 the operator sees).
        log.error({ err, server: d.server }, "policy evaluation failed: refusing");
        d.policy = { decisionId, ruleIds: [], version: policy.version };
        auditDecision(d, "deny", "policy evaluation failed", null);
        refuse(d, res, err, msg.id);
        return;
      }
      d.policy = { decisionId, ruleIds: decision.ruleIds, version: decision.policyVersion };
      metrics.decisions.inc({ effect: decision.effect });
      const review = deps.review ?? null;
      // A tool the upstream does not list cannot run: no approval (nor webhook) for it.
      const unlisted = decision.effect === "review" ? listedTools.unlistedTool(d.server, msg) : null;
      if (unlisted !== null) {
        auditDecision(d, "deny", unlisted.reason, { event: "review.unknown_tool" });
        return refuse(d, res, unlisted, msg.id);
      }
      if (decision.effect === "review" && review !== null && review.handles(msg)) {
        let held: Awaited<ReturnType<ReviewGate["handle"]>>;
        try {
          held = await review.handle({
            principal,
            server: d.server,
            msg,
            decision,
            decisionId,
            protocolVersion: ctx.protocolVersion,
            accept: headerValue(req.headers.accept) ?? "",
            res,
            audit: (effect, why, detail) =>
              effect === "allow"
                ? audit.recordDurable(auditEntry(d, effect, why, detail))
                : auditDecision(d, effect, why, detail),
          });
        } catch (err) {
          log.error({ err, server: d.server }, "review failed: refusing");
          refuse(d, res, err, msg.id);
          return;
        }
        if (held.kind === "replied") return finish(d, held.label);
        if (held.kind === "refuse") return refuse(d, res, held.error, msg.id);
        msg = held.msg;
        out = held.res;
        reason = held.reason;
        reviewed = true;
      } else if (decision.effect !== "allow") {
        auditDecision(d, decision.effect, decision.reason, null);
        refuse(d, res, policyRefusal(decision.effect, decisionId, decision.reason), msg.id);
        return;
      } else reason = decision.reason;
    }
    const scoped = restrictsTools(scopes, d.server);
    const filter: ListFilter | null =
      msg.kind === "request" && isListMethod(msg.method)
        ? {
            visible: (list, name) =>
              (list !== "tools/list" ||
                ((!scoped || allowsTool(scopes, d.server, name)) &&
                  !authorization.blocked(d.server, name))) &&
              entryVisible(policy, principal, d.server, list, name, authorization.tools, ctx),
            observeTools: (tools) => {
              authorization.observeTools(d.server, tools);
              listedTools.observe(d.server, tools);
            },
          }
        : null;
    // A reviewed call's forwarding was audited when its approval was consumed.
    if (!reviewed) {
      if (tier === "write" || tier === "destructive") {
        // Durable before it runs: a crash right after forwarding cannot lose the record.
        try {
          await audit.recordDurable(auditEntry(d, "allow", reason, null));
        } catch (err) {
          log.error({ err, server: d.server }, "cannot record a write-tier call durably: refusing");
          refuse(d, res, storeUnavailable("audit store unavailable"), msg.id);
          return;
        }
      } else auditDecision(d, "allow", reason, null);
    }
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    try {
      await route.upstream.post({
        principal,
        msg,
        headers: req.headers,
        res: out,
        filter,
        signal: controller.signal,
        paramHeaders: upstreamParams,
      });
      finish(d, out.statusCode < 400 ? "allowed" : String(out.statusCode));
    } catch (err) {
      if (err instanceof GatewayError) {
        log.warn({ server: d.server, reason: err.reason }, err.message);
        // The allow was recorded before forwarding; what the client got instead is recorded too.
        if (err.status !== 499)
          auditDecision(d, "deny", `forwarding failed: ${err.reason}`, {
            event: "upstream.fault",
            status: err.status,
          });
        if (err.status >= 502) metrics.upstreamErrors.inc({ server: d.server, status: String(err.status) });
      }
      refuse(d, out, err, msg.id);
    }
  }

  function stream(kind: "get" | "delete") {
    return async (
      req: FastifyRequest<{ Params: { server: string } }>,
      reply: FastifyReply,
    ): Promise<void> => {
      reply.hijack();
      const res = reply.raw;
      const d: Decision = {
        principal: null,
        server: req.params.server,
        msg: null,
        started: performance.now(),
      };
      const route = routes.get(d.server);
      const principal = await authenticated(req, res, d, route);
      if (!principal || !route) return;
      if (kind === "get") {
        const slot = limits.stream(principal.id, d.server, headerValue(req.headers["mcp-session-id"]));
        if (slot instanceof GatewayError) {
          auditDecision(d, "deny", slot.reason, { event: `limit.${limitOf(slot)}` });
          refuse(d, res, slot);
          return;
        }
        res.once("close", slot);
      }
      auditDecision(d, "allow", `${kind.toUpperCase()} stream`, null);
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      try {
        await route.upstream[kind]({ principal, headers: req.headers, res, signal: controller.signal });
        finish(d, "allowed");
      } catch (err) {
        refuse(d, res, err);
      }
    };
  }

  app.post("/mcp/:server", post);
  app.get("/mcp/:server", stream("get"));
  app.delete("/mcp/:server", stream("delete"));

  if (oauthEnabled) {
    // RFC 9728 §3: the path-inserted well-known URI for each resource, and the root one.
    const metadata = (server: string) => {
      const route = routes.get(server);
      const tools = Object.values(route?.toolScopes ?? {}).flat();
      return {
        resource: resourceUrl(server),
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
  app.get("/metrics", async (_req, reply) => {
    metrics.auditPending.set(audit.pending);
    metrics.storeReachable.set(keyring.healthy() ? 1 : 0);
    metrics.callsInFlight.set(limits.callsInFlight);
    metrics.openStreams.set(limits.openStreams);
    for (const [name, route] of routes)
      metrics.upstreamProcesses.set({ server: name }, route.upstream.processes());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  /** A body refused for its size (before the handler runs) is a decision too: recorded, caller named. */
  async function auditOversized(req: FastifyRequest): Promise<void> {
    const server = /^\/mcp\/([^/?#]+)/.exec(req.url)?.[1];
    if (server === undefined) return;
    const d: Decision = { principal: null, server, msg: null, started: performance.now() };
    const why = `request body larger than limits.bodyBytes (${config.limits.bodyBytes} bytes)`;
    try {
      const pending = authenticate(
        req.headers,
        keyring,
        routes.get(server)?.anonymous ? anonymous : null,
        oauth.verifier,
        resourceUrl(server),
      );
      const result = pending instanceof Promise ? await pending : pending;
      if (result.ok) d.principal = result.principal;
      auditDecision(d, "deny", why, { event: "request.too_large" }, result.ok ? null : result.credentialId);
    } catch {
      auditDecision(d, "deny", why, { event: "request.too_large" });
    }
  }

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
      mapped = new GatewayError(413, RpcCode.PayloadTooLarge, "Request body too large", err.message);
      void auditOversized(req);
    } else if (status >= 400 && status < 500)
      mapped = new GatewayError(status, RpcCode.InvalidRequest, "Invalid Request", err.message);
    else log.error({ err, url: req.url }, "unhandled error");
    const r = errorReply(mapped);
    void reply.code(r.status).headers(r.headers).send(r.body);
  });
  return app;
}
