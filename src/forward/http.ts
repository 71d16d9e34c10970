/**
 * Forwarding to a remote Streamable HTTP MCP server (MCP basic/transports) over a pooled
 * keep-alive undici connection pool. The client's credential is never forwarded: only MCP
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
import { filterResponse } from "./results.js";
import type { SessionBindings } from "./sessions.js";
import { sseRewriter } from "./sse.js";
import { isForwardableHeader, type PostExchange, type StreamExchange, type Upstream } from "./upstream.js";
import { BoundedBody, checkUpstreamReply, isEventStream, tooLargeReply } from "./upstreamReply.js";

const SESSION_HEADER = "mcp-session-id";

export class HttpUpstream implements Upstream {
  private readonly pool: Pool;
  /**
   * Long-lived 2025-x GET streams hold a connection each for as long as they are open: they
   * get their own pool, so open streams can never take the connections calls need.
   */
  private readonly streamPool: Pool;
  private readonly path: string;

  constructor(
    readonly name: string,
    private readonly config: HttpServerConfig,
    /** Operator-configured headers, secrets already resolved at startup. */
    private readonly fixedHeaders: Record<string, string>,
    private readonly sessions: SessionBindings,
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
    };
    this.pool = new Pool(url.origin, options);
    this.streamPool = new Pool(url.origin, options);
  }

  processes(): number {
    return 0;
  }

  private upstreamHeaders(client: IncomingHttpHeaders, principalId: string): Record<string, string> {
    const out: Record<string, string> = { ...this.fixedHeaders };
    for (const [name, value] of Object.entries(client)) {
      if (value !== undefined && isForwardableHeader(name))
        out[name] = Array.isArray(value) ? value.join(",") : value;
    }
    const session = client[SESSION_HEADER];
    if (typeof session === "string") {
      const check = this.sessions.check(session, principalId, this.name);
      if (check !== "ok") {
        throw new GatewayError(
          404,
          RpcCode.SessionNotFound,
          "Session not found",
          check === "foreign"
            ? "session id belongs to another caller (hijack attempt refused)"
            : "unknown session id",
        );
      }
      out[SESSION_HEADER] = session;
    }
    return out;
  }

  private async send(
    method: "POST" | "GET" | "DELETE",
    headers: Record<string, string>,
    body: string | null,
    signal: AbortSignal,
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
   * client falls back to the initialize handshake instead of failing obscurely.
   */
  private modernSupport: { at: number; value: Promise<boolean> } | null = null;

  private supportsModern(signal: AbortSignal): Promise<boolean> {
    if (this.modernSupport && Date.now() - this.modernSupport.at < 60_000) return this.modernSupport.value;
    const value = (async () => {
      const body = JSON.stringify({
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
      const res = await this.send(
        "POST",
        {
          ...this.fixedHeaders,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": MODERN_PROTOCOL_VERSION,
          "mcp-method": "server/discover",
        },
        body,
        signal,
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

  async post(x: PostExchange): Promise<void> {
    if (isModernVersion(x.msg.metaProtocolVersion) && !(await this.supportsModern(x.signal))) {
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
    headers.accept =
      typeof x.headers.accept === "string" ? x.headers.accept : "application/json, text/event-stream";
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
    let head: Pick<Dispatcher.ResponseData, "statusCode" | "headers"> | null = null;
    let sink: BoundedBody | null = null;
    // The answer must start within timeoutMs of the call, waiting for a free connection
    // included (undici's headersTimeout only starts once the request is on a socket), so a
    // full pool answers 504 instead of holding the caller indefinitely.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.config.timeoutMs);
    // A 2026-07-28 subscriptions/listen stream stays open like a GET stream: not on the call pool.
    const pool = msg.method === "subscriptions/listen" ? this.streamPool : this.pool;
    try {
      await pool.stream(
        {
          path: this.path,
          method: "POST",
          headers,
          body: JSON.stringify(msg.message),
          signal: AbortSignal.any([x.signal, deadline.signal]),
        },
        ({ statusCode, headers: upstreamHeaders }) => {
          clearTimeout(timer);
          const sessionId = upstreamHeaders[SESSION_HEADER];
          if (typeof sessionId === "string" && msg.method === "initialize" && statusCode < 300) {
            this.sessions.bind(sessionId, x.principal.id, this.name);
          }
          if (statusCode === 200 && isEventStream(String(upstreamHeaders["content-type"] ?? ""))) {
            writeHead(x.res, { statusCode, headers: upstreamHeaders });
            if (rewrite === null) return x.res;
            const rewriter = sseRewriter(rewrite);
            rewriter.pipe(x.res);
            return rewriter;
          }
          head = { statusCode, headers: upstreamHeaders };
          sink = new BoundedBody(this.config.maxResponseBytes);
          return sink;
        },
      );
    } catch (err) {
      if ((sink as BoundedBody | null)?.overflow)
        throw tooLargeReply(this.name, this.config.maxResponseBytes);
      if (x.res.headersSent) {
        x.res.destroy();
        return;
      }
      if (deadline.signal.aborted && !x.signal.aborted) {
        throw new GatewayError(
          504,
          RpcCode.UpstreamTimeout,
          "Upstream timed out",
          `upstream ${this.name} timed out: no answer started within ${this.config.timeoutMs} ms (connection pool full or upstream slow)`,
        );
      }
      throw upstreamError(this.name, err);
    } finally {
      clearTimeout(timer);
    }
    if (head === null || sink === null) return;
    const reply: Pick<Dispatcher.ResponseData, "statusCode" | "headers"> = head;
    const checked = checkUpstreamReply(
      this.name,
      reply.statusCode,
      String(reply.headers["content-type"] ?? ""),
      (sink as BoundedBody).body,
    );
    if (checked instanceof GatewayError) throw checked;
    const text =
      rewrite !== null && reply.statusCode === 200 && checked.body.length > 0
        ? rewrite(checked.body.toString("utf8"))
        : checked.body;
    writeHead(x.res, reply, Buffer.byteLength(text));
    x.res.end(text);
  }

  async get(x: StreamExchange): Promise<void> {
    const headers = this.upstreamHeaders(x.headers, x.principal.id);
    headers.accept = "text/event-stream";
    const upstream = await this.send("GET", headers, null, x.signal, true, this.streamPool);
    writeHead(x.res, upstream, undefined, true);
    await pipe(upstream.body, x.res);
  }

  async delete(x: StreamExchange): Promise<void> {
    const headers = this.upstreamHeaders(x.headers, x.principal.id);
    const upstream = await this.send("DELETE", headers, null, x.signal, false);
    const session = x.headers[SESSION_HEADER];
    if (typeof session === "string" && upstream.statusCode < 300) this.sessions.unbind(session);
    writeHead(x.res, upstream);
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
  upstream: Pick<Dispatcher.ResponseData, "statusCode" | "headers">,
  length?: number,
  flush = false,
): void {
  const headers: Record<string, string> = {};
  for (const name of PASSED_BACK) {
    const v = upstream.headers[name];
    if (typeof v === "string") headers[name] = v;
  }
  if (length !== undefined) headers["content-length"] = String(length);
  // An upstream 401/403 is about the gateway's own upstream credential, not the client's:
  // never let it look like the client's token was rejected.
  const status = upstream.statusCode === 401 || upstream.statusCode === 403 ? 502 : upstream.statusCode;
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
  if (err instanceof Error && err.name === "AbortError") {
    return new GatewayError(499, RpcCode.InternalError, "Client closed request", "client went away");
  }
  return new GatewayError(
    502,
    RpcCode.UpstreamUnavailable,
    "Upstream unavailable",
    `upstream ${server} unreachable: ${(err as Error)?.message ?? String(err)}`,
  );
}
