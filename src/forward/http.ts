/**
 * Forwarding to a remote Streamable HTTP MCP server (MCP basic/transports) over a pooled
 * keep-alive undici connection pool, one per upstream, built once. Requests are not
 * pipelined (`pipelining: 1`): MCP POSTs are not idempotent, and a pipelined request behind
 * a slow or failing one on the same socket could be replayed or stalled. The client's credential is never forwarded: only MCP
 * headers plus the headers the operator configured (from secrets) go upstream.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { Pool, errors as undiciErrors } from "undici";
import { isModernVersion } from "../classify/headers.js";
import {
  type JsonObject,
  LEGACY_PROTOCOL_VERSIONS,
  META_PROTOCOL_VERSION,
  MODERN_PROTOCOL_VERSION,
} from "../classify/message.js";
import type { HttpServerConfig } from "../config/schema.js";
import { GatewayError, RpcCode } from "../core/errors.js";
import type { UpstreamHealth } from "../telemetry/upstreamHealth.js";
import { filterResponse } from "./results.js";
import type { SessionBindings } from "./sessions.js";
import { sseRewriter } from "./sse.js";
import {
  FORWARDED_HEADERS,
  onClientGone,
  type PostExchange,
  type StreamExchange,
  type Upstream,
} from "./upstream.js";
import { UpstreamCall } from "./upstreamCall.js";
import { checkUpstreamReply, isEventStream, tooLargeReply } from "./upstreamReply.js";
import { rotatingConnector, type UpstreamTls } from "./upstreamTls.js";

const SESSION_HEADER = "mcp-session-id";
const DEFAULT_ACCEPT = "application/json, text/event-stream";
/** The health probe: a JSON-RPC ping. Any HTTP answer but 404 or 5xx means the server is there. */
const PING_BODY = JSON.stringify({ jsonrpc: "2.0", id: "portcullis-health", method: "ping" });
const PROBE_TIMEOUT_MS = 5000;
/** The probe of supportsModern, built once. */
const DISCOVER_BODY = JSON.stringify({
  jsonrpc: "2.0",
  id: "portcullis-discover",
  method: "server/discover",
  params: {
    _meta: {
      [META_PROTOCOL_VERSION]: MODERN_PROTOCOL_VERSION,
      "io.modelcontextprotocol/clientCapabilities": {},
      "io.modelcontextprotocol/clientInfo": { name: "portcullis", version: "probe" },
    },
  },
});
const DISCOVER_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  accept: DEFAULT_ACCEPT,
  "mcp-protocol-version": MODERN_PROTOCOL_VERSION,
  "mcp-method": "server/discover",
};

export class HttpUpstream implements Upstream {
  private readonly pool: Pool;
  /**
   * Long-lived 2025-x GET streams hold a connection each for as long as they are open: they
   * get their own pool, so open streams can never take the connections calls need.
   */
  private readonly streamPool: Pool;
  private readonly path: string;
  readonly probed = true;

  constructor(
    readonly name: string,
    private readonly config: HttpServerConfig,
    /** Operator-configured headers, secrets already resolved at startup. */
    private readonly fixedHeaders: Record<string, string>,
    private readonly sessions: SessionBindings,
    private readonly health: UpstreamHealth,
    /** Mutual TLS settings (SPIFFE `tls:`); absent: ordinary https or http. */
    tls: UpstreamTls | null = null,
  ) {
    const url = new URL(config.url);
    this.path = url.pathname + url.search;
    const options: Pool.Options = {
      connections: config.connections,
      connectTimeout: config.connectTimeoutMs,
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      keepAliveTimeout: 30_000,
      pipelining: 1,
      ...(tls === null ? {} : { connect: rotatingConnector(tls, config.connectTimeoutMs) }),
    };
    this.pool = new Pool(url.origin, options);
    this.streamPool = new Pool(url.origin, options);
  }

  processes(): number {
    return 0;
  }

  /** Where the server is, for messages: no query string or user info (they may hold secrets). */
  private where(): string {
    const url = new URL(this.config.url);
    return `${url.origin}${url.pathname}`;
  }

  async check(): Promise<void> {
    const timeout = Math.min(PROBE_TIMEOUT_MS, this.config.timeoutMs);
    try {
      const res = await this.pool.request({
        path: this.path,
        method: "POST",
        headers: { ...this.fixedHeaders, "content-type": "application/json", accept: DEFAULT_ACCEPT },
        body: PING_BODY,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await res.body.dump();
      if (res.statusCode === 404 || res.statusCode >= 500) {
        await this.health.down(
          this.name,
          `servers.${this.name}.url ${this.where()} answered HTTP ${res.statusCode}: check the URL and the server's own log`,
        );
      } else this.health.up(this.name);
    } catch (err) {
      const why =
        (err as Error)?.name === "TimeoutError"
          ? `no answer within ${timeout} ms`
          : upstreamError(this.name, err).reason;
      await this.health.down(
        this.name,
        `servers.${this.name}.url ${this.where()} does not answer (${why}): start the server, or fix the URL`,
      );
    }
  }

  private upstreamHeaders(client: IncomingHttpHeaders, principalId: string): Record<string, string> {
    const out: Record<string, string> = { ...this.fixedHeaders };
    for (const name of FORWARDED_HEADERS) {
      const value = client[name];
      if (value !== undefined) out[name] = Array.isArray(value) ? value.join(",") : value;
    }
    const session = client[SESSION_HEADER];
    if (typeof session === "string") {
      this.sessions.require(session, principalId, this.name);
      out[SESSION_HEADER] = session;
    }
    return out;
  }

  private async send(
    method: "POST" | "GET" | "DELETE",
    headers: Record<string, string>,
    body: string | null,
    signal: AbortSignal | null,
    streaming: boolean,
    pool: Pool = this.pool,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await pool.request({
        path: this.path,
        method,
        headers,
        body,
        signal,
        // Long-lived SSE streams (GET) may idle between events.
        ...(streaming ? { bodyTimeout: 0, headersTimeout: this.config.timeoutMs } : {}),
      });
    } catch (err) {
      throw upstreamError(this.name, err);
    }
  }

  /**
   * Whether the upstream serves 2026-07-28, learnt from one `server/discover` probe and
   * remembered for a minute. A legacy-only upstream makes the gateway answer modern clients
   * with UnsupportedProtocolVersion listing the revisions that will work, so a negotiating
   * client falls back to the initialize handshake instead of failing obscurely. The probe is
   * shared by every caller waiting on it, so no one caller's disconnect aborts it.
   */
  private modernSupport: { at: number; value: Promise<boolean> } | null = null;

  private supportsModern(): Promise<boolean> {
    if (this.modernSupport && Date.now() - this.modernSupport.at < 60_000) return this.modernSupport.value;
    const value = (async () => {
      const res = await this.send(
        "POST",
        { ...this.fixedHeaders, ...DISCOVER_HEADERS },
        DISCOVER_BODY,
        null,
        false,
      );
      const text = await res.body.text();
      return res.statusCode === 200 && text.includes(MODERN_PROTOCOL_VERSION);
    })();
    this.modernSupport = { at: Date.now(), value };
    value.catch(() => {
      this.modernSupport = null;
    });
    return value;
  }

  /** {@link supportsModern}, reporting an upstream that does not answer the probe as down. */
  private async supportsModernOrReport(): Promise<boolean> {
    try {
      return await this.supportsModern();
    } catch (err) {
      if (err instanceof GatewayError && err.status !== 499) void this.health.down(this.name, err.reason);
      throw err;
    }
  }

  async post(x: PostExchange): Promise<void> {
    if (isModernVersion(x.msg.metaProtocolVersion) && !(await this.supportsModernOrReport())) {
      throw new GatewayError(
        400,
        RpcCode.UnsupportedProtocolVersion,
        `Unsupported protocol version: upstream ${this.name} speaks only 2025-x revisions; connect with the initialize handshake`,
        `upstream ${this.name} does not serve ${MODERN_PROTOCOL_VERSION}`,
        { supported: [...LEGACY_PROTOCOL_VERSIONS], requested: x.msg.metaProtocolVersion },
      ).withId(x.msg.id);
    }
    const headers = this.upstreamHeaders(x.headers, x.principal.id);
    if (x.paramHeaders) Object.assign(headers, x.paramHeaders);
    headers["content-type"] = "application/json";
    headers.accept = typeof x.headers.accept === "string" ? x.headers.accept : DEFAULT_ACCEPT;
    const { filter, msg } = x;
    const rewrite =
      filter && msg.kind === "request"
        ? (text: string): string => {
            try {
              return JSON.stringify(
                filterResponse(JSON.parse(text) as JsonObject, msg.id, msg.method, filter),
              );
            } catch {
              return text;
            }
          }
        : null;
    // An SSE stream passes through event by event (rewritten when filtered); any other reply
    // is read whole (bounded) and checked before the client sees a byte of it.
    const call = new UpstreamCall(this.config.maxResponseBytes, (statusCode, upstreamHeaders) => {
      clearTimeout(deadline);
      const sessionId = upstreamHeaders[SESSION_HEADER];
      if (typeof sessionId === "string" && msg.method === "initialize" && statusCode < 300) {
        this.sessions.bind(sessionId, x.principal.id, this.name);
      }
      if (statusCode !== 200 || !isEventStream(String(upstreamHeaders["content-type"] ?? ""))) return null;
      writeHead(x.res, statusCode, upstreamHeaders);
      if (rewrite === null) return x.res;
      const rewriter = sseRewriter(rewrite);
      rewriter.pipe(x.res);
      return rewriter;
    });
    // The answer must start within timeoutMs of the call, waiting for a free connection
    // included (undici's headersTimeout only starts once the request is on a socket), so a
    // full pool answers 504 instead of holding the caller indefinitely.
    const deadline = setTimeout(() => call.abort("deadline"), this.config.timeoutMs);
    const unwatch = onClientGone(x, () => call.abort("client-gone"));
    // A 2026-07-28 subscriptions/listen stream stays open like a GET stream: not on the call pool.
    const pool = msg.method === "subscriptions/listen" ? this.streamPool : this.pool;
    pool.dispatch({ path: this.path, method: "POST", headers, body: JSON.stringify(msg.message) }, call);
    try {
      await call.done;
    } catch (err) {
      if (call.aborted !== "client-gone" && call.aborted !== "overflow") {
        const failure =
          call.aborted === "deadline"
            ? `no answer started within ${this.config.timeoutMs} ms`
            : upstreamError(this.name, err).reason;
        void this.health.down(this.name, failure);
      }
      if (call.aborted === "overflow") throw tooLargeReply(this.name, this.config.maxResponseBytes);
      if (x.res.headersSent) {
        x.res.destroy();
        return;
      }
      if (call.aborted === "client-gone") throw clientGone();
      if (call.aborted === "deadline") {
        throw new GatewayError(
          504,
          RpcCode.UpstreamTimeout,
          "Upstream timed out",
          `upstream ${this.name} timed out: no answer started within ${this.config.timeoutMs} ms (connection pool full or upstream slow)`,
        );
      }
      throw upstreamError(this.name, err);
    } finally {
      clearTimeout(deadline);
      unwatch();
    }
    if (call.statusCode >= 500) void this.health.down(this.name, `answered HTTP ${call.statusCode}`);
    else this.health.up(this.name);
    if (call.streamed) return;
    const checked = checkUpstreamReply(
      this.name,
      call.statusCode,
      String(call.headers["content-type"] ?? ""),
      call.body,
    );
    if (checked instanceof GatewayError) throw checked;
    const text =
      rewrite !== null && call.statusCode === 200 && checked.body.length > 0
        ? rewrite(checked.body.toString("utf8"))
        : checked.body;
    // Head and body leave in one write: end() corks the socket around both.
    writeHead(x.res, call.statusCode, call.headers, Buffer.byteLength(text));
    x.res.end(text);
  }

  async get(x: StreamExchange): Promise<void> {
    const headers = this.upstreamHeaders(x.headers, x.principal.id);
    headers.accept = "text/event-stream";
    const upstream = await this.send("GET", headers, null, clientSignal(x), true, this.streamPool);
    writeHead(x.res, upstream.statusCode, upstream.headers, undefined, true);
    await pipe(upstream.body, x.res);
  }

  async delete(x: StreamExchange): Promise<void> {
    const headers = this.upstreamHeaders(x.headers, x.principal.id);
    const upstream = await this.send("DELETE", headers, null, clientSignal(x), false);
    const session = x.headers[SESSION_HEADER];
    if (typeof session === "string" && upstream.statusCode < 300) this.sessions.unbind(session);
    writeHead(x.res, upstream.statusCode, upstream.headers);
    await pipe(upstream.body, x.res);
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.streamPool.close()]);
  }
}

/** Response headers passed back to the client (never upstream cookies or auth challenges). */
const PASSED_BACK = ["content-type", SESSION_HEADER, "cache-control", "mcp-protocol-version"];

function writeHead(
  res: ServerResponse,
  statusCode: number,
  upstreamHeaders: IncomingHttpHeaders,
  length?: number,
  flush = false,
): void {
  const headers: Record<string, string | number> = {};
  for (const name of PASSED_BACK) {
    const v = upstreamHeaders[name];
    if (typeof v === "string") headers[name] = v;
  }
  if (length !== undefined) headers["content-length"] = length;
  // An upstream 401/403 is about the gateway's own upstream credential, not the client's:
  // never let it look like the client's token was rejected.
  const status = statusCode === 401 || statusCode === 403 ? 502 : statusCode;
  res.writeHead(status, headers);
  // A POST response's headers leave with its first event (one write instead of two); a GET
  // stream may wait long for its first event, so its headers are flushed at once.
  if (flush) res.flushHeaders();
}

function pipe(body: NodeJS.ReadableStream, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    body.on("error", () => {
      res.destroy();
      resolve();
    });
    res.on("close", () => {
      (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve();
    });
    body.pipe(res);
  });
}

function upstreamError(server: string, err: unknown): GatewayError {
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new GatewayError(
      504,
      RpcCode.UpstreamTimeout,
      "Upstream timed out",
      `upstream ${server} timed out: ${(err as Error).message}`,
    );
  }
  if (err instanceof Error && err.name === "AbortError") return clientGone();
  return new GatewayError(
    502,
    RpcCode.UpstreamUnavailable,
    "Upstream unavailable",
    `upstream ${server} unreachable: ${(err as Error)?.message ?? String(err)}`,
  );
}

function clientGone(): GatewayError {
  return new GatewayError(499, RpcCode.InternalError, "Client closed request", "client went away");
}

/** The exchange's signal, or one aborted when its response closes unfinished (GET/DELETE only). */
function clientSignal(x: StreamExchange): AbortSignal {
  if (x.signal !== undefined) return x.signal;
  const controller = new AbortController();
  onClientGone(x, () => controller.abort());
  return controller.signal;
}
