/**
 * Serves a stdio MCP server over Streamable HTTP to every current revision:
 * - 2025-06-18 / 2025-11-25: initialize handshake answered by the gateway from the child's
 *   own initialize result, gateway-minted `Mcp-Session-Id` bound to the caller, GET stream
 *   for server notifications, DELETE to end the session;
 * - 2026-07-28: stateless requests, `server/discover` synthesised from the child's
 *   capabilities, `resultType` and CacheableResult fields added to results.
 * Isolation: one child per caller identity by default, so callers never share state.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import { isModernVersion } from "../../classify/headers.js";
import {
  type JsonObject,
  LEGACY_PROTOCOL_VERSIONS,
  MODERN_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "../../classify/message.js";
import type { StdioServerConfig } from "../../config/schema.js";
import { GatewayError, RpcCode } from "../../core/errors.js";
import { sendJson, sseEvent } from "../../core/reply.js";
import type { UpstreamHealth } from "../../telemetry/upstreamHealth.js";
import { filterResult } from "../results.js";
import type { SessionBindings } from "../sessions.js";
import { onClientGone, type PostExchange, type StreamExchange, type Upstream } from "../upstream.js";
import { commandProblem } from "../upstreamChecks.js";
import { type ChildInit, StdioChild } from "./child.js";
import { discoverResult, modernResult } from "./modernResults.js";

const SESSION_HEADER = "mcp-session-id";
const MAX_BACKOFF_MS = 30_000;
/** How long a crash report waits for the rest of a dead child's stderr (a grandchild may hold it). */
const STDERR_DRAIN_MS = 1000;

interface Slot {
  child: StdioChild | null;
  starting: Promise<StdioChild> | null;
  crashes: number;
  lastCrash: number;
  /** Open legacy GET streams of this caller's sessions. */
  streams: Set<ServerResponse>;
}

export class StdioUpstream implements Upstream {
  private slots = new Map<string, Slot>();
  private reaper: NodeJS.Timeout;
  private closed = false;
  /** Children start on demand, per caller: the check is a PATH lookup at start, not a probe. */
  readonly probed = false;

  constructor(
    readonly name: string,
    private readonly config: StdioServerConfig,
    /** Configured child env with secrets resolved at startup. */
    private readonly env: Record<string, string>,
    private readonly sessions: SessionBindings,
    private readonly log: Logger,
    private readonly version: string,
    private readonly health: UpstreamHealth,
  ) {
    const idleMs = config.idleTimeoutSeconds * 1000;
    this.reaper = setInterval(() => this.reapIdle(idleMs), Math.min(idleMs, 30_000));
    this.reaper.unref();
  }

  async check(): Promise<void> {
    const problem = commandProblem(this.name, this.config, this.env);
    if (problem !== null) await this.health.down(this.name, problem);
  }

  processes(): number {
    let n = 0;
    for (const slot of this.slots.values()) if (slot.child?.alive) n++;
    return n;
  }

  private slotKey(principalId: string): string {
    return this.config.isolation === "shared" ? "*" : principalId;
  }

  private slot(key: string): Slot {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { child: null, starting: null, crashes: 0, lastCrash: 0, streams: new Set() };
      this.slots.set(key, slot);
    }
    return slot;
  }

  /** The caller's child, started (after a crash backoff) and initialized on first use. */
  private acquire(key: string): Promise<StdioChild> {
    if (this.closed) {
      return Promise.reject(
        new GatewayError(503, RpcCode.UpstreamUnavailable, "Gateway shutting down", "gateway closing"),
      );
    }
    const slot = this.slot(key);
    if (slot.child?.alive && slot.child.init) return Promise.resolve(slot.child);
    if (slot.starting) return slot.starting;
    if (this.processes() >= this.config.maxProcesses && !this.evictIdle()) {
      return Promise.reject(
        new GatewayError(
          503,
          RpcCode.UpstreamUnavailable,
          "Upstream at capacity",
          `stdio upstream ${this.name}: maxProcesses (${this.config.maxProcesses}) reached`,
        ),
      );
    }
    // Restart at once after a first crash, then with exponential backoff after repeated ones
    // (250 ms, 500 ms, ... up to 30 s). While a restart waits, calls fail at once with 503 and
    // Retry-After instead of waiting it out (and holding the caller's connection meanwhile).
    const sinceCrash = Date.now() - slot.lastCrash;
    if (sinceCrash > 60_000) slot.crashes = 0;
    const backoff = restartBackoffMs(slot.crashes) - sinceCrash;
    if (backoff > 0) {
      return Promise.reject(
        new GatewayError(
          503,
          RpcCode.UpstreamUnavailable,
          "Upstream restarting after repeated crashes; retry later",
          `stdio upstream ${this.name} crashed ${slot.crashes} times; next restart in ${backoff} ms`,
          { retryAfterSeconds: Math.ceil(backoff / 1000) },
          { "retry-after": String(Math.max(1, Math.ceil(backoff / 1000))) },
        ),
      );
    }
    slot.starting = (async () => {
      const child = new StdioChild(this.name, this.config, this.env, this.log, (c, code, signal, why) =>
        this.onExit(key, c, code, signal, why),
      );
      slot.child = child;
      child.onBroadcast = (n) => this.broadcast(slot, n);
      if (this.log.isLevelEnabled("debug")) child.onStderr = (line) => this.debugStderr(child, line);
      try {
        await child.initialize(this.config.timeoutMs, this.version);
      } catch (err) {
        // A child that exited is reported by onExit, with its stderr; one that is alive did
        // not answer initialize as an MCP server must.
        if (child.alive) {
          const reason = err instanceof GatewayError ? err.reason : String(err);
          void this.health.down(this.name, `initialize failed: ${reason}`, child.stderrTail());
        }
        throw err;
      }
      this.log.info({ server: this.name, pid: child.pid }, "stdio upstream started");
      this.health.up(this.name);
      return child;
    })().finally(() => {
      slot.starting = null;
    });
    return slot.starting;
  }

  /** A server's stderr at debug level, masked like the crash report (never raw). */
  private debugStderr(child: StdioChild, line: string): void {
    void this.health.mask([line]).then(
      ([masked]) => this.log.debug({ server: this.name, pid: child.pid, stderr: masked }, "upstream stderr"),
      () => {},
    );
  }

  private onExit(
    key: string,
    child: StdioChild,
    code: number | null,
    signal: NodeJS.Signals | null,
    why: string,
  ): void {
    const slot = this.slots.get(key);
    const current = slot !== undefined && slot.child === child;
    if (current) slot.child = null;
    if (child.stopping || this.closed) return;
    // Reported once stderr is drained, so the last lines are really the last ones.
    const notFound = why.includes("ENOENT") || why.includes("EACCES");
    const problem = notFound ? commandProblem(this.name, this.config, this.env) : null;
    void Promise.race([child.stderrClosed, new Promise((r) => setTimeout(r, STDERR_DRAIN_MS).unref())]).then(
      () => this.health.down(this.name, problem ?? why, child.stderrTail()),
    );
    if (!current) return;
    slot.crashes++;
    slot.lastCrash = Date.now();
    this.log.warn(
      { server: this.name, code, signal, crashes: slot.crashes },
      "stdio upstream exited; restarting on next call with backoff",
    );
  }

  private reapIdle(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const [key, slot] of this.slots) {
      const child = slot.child;
      if (child && !child.busy && child.lastActivity < cutoff && slot.streams.size === 0) {
        this.log.info({ server: this.name, pid: child.pid }, "reaping idle stdio upstream");
        child.stopping = true;
        void child.stop();
        slot.child = null;
        this.slots.delete(key);
      }
    }
  }

  private evictIdle(): boolean {
    let victim: [string, Slot] | null = null;
    for (const entry of this.slots) {
      const c = entry[1].child;
      if (
        c?.alive &&
        !c.busy &&
        entry[1].streams.size === 0 &&
        (!victim || c.lastActivity < (victim[1].child?.lastActivity ?? 0))
      ) {
        victim = entry;
      }
    }
    if (!victim?.[1].child) return false;
    victim[1].child.stopping = true;
    void victim[1].child.stop();
    this.slots.delete(victim[0]);
    return true;
  }

  private broadcast(slot: Slot, notification: JsonObject): void {
    const event = sseEvent(notification);
    for (const res of slot.streams) res.write(event);
  }

  async post(x: PostExchange): Promise<void> {
    const { msg } = x;
    const headerVersion = x.headers["mcp-protocol-version"];
    const version = msg.metaProtocolVersion ?? (typeof headerVersion === "string" ? headerVersion : null);
    const modern = isModernVersion(version);
    if (modern && version !== MODERN_PROTOCOL_VERSION) {
      throw new GatewayError(
        400,
        RpcCode.UnsupportedProtocolVersion,
        "Unsupported protocol version",
        `client asked for ${version}`,
        {
          supported: [...SUPPORTED_PROTOCOL_VERSIONS],
          requested: version,
        },
      ).withId(msg.id);
    }
    const key = this.slotKey(x.principal.id);

    if (!modern) {
      if (msg.method === "initialize") return this.initializeSession(x, key);
      this.requireSession(x);
    }
    if (msg.kind !== "request") {
      if (msg.method === "notifications/cancelled") {
        // Cancellation ids are the client's; the child never saw them, so there is nothing
        // safe to forward. In-flight calls are cancelled when the client disconnects.
      } else if (msg.kind === "notification" && msg.method !== "notifications/initialized") {
        const child = this.slots.get(key)?.child;
        child?.notify(msg.message);
      }
      x.res.writeHead(202).end();
      return;
    }
    if (modern && msg.method === "server/discover") {
      const child = await this.acquire(key);
      return sendJson(x.res, 200, {
        jsonrpc: "2.0",
        id: msg.id,
        result: discoverResult(child.init as ChildInit),
      });
    }
    if (modern && (msg.method === "initialize" || msg.method === "subscriptions/listen")) {
      throw new GatewayError(
        400,
        RpcCode.MethodNotFound,
        `${msg.method} is not available for this server on ${MODERN_PROTOCOL_VERSION} through the gateway`,
        `stdio bridge does not support ${msg.method} on the modern revision`,
      ).withId(msg.id);
    }

    const child = await this.acquire(key);
    const params = msg.message.params as JsonObject | undefined;
    const accept = String(x.headers.accept ?? "");
    const stream = accept.includes("text/event-stream") && hasProgressToken(params);
    let clientToken: unknown = null;
    if (stream) {
      clientToken = ((params?._meta ?? {}) as JsonObject).progressToken;
      x.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      x.res.flushHeaders();
    }
    const onNotification = stream
      ? (n: JsonObject) => {
          const p = { ...(n.params as JsonObject), progressToken: clientToken };
          x.res.write(sseEvent({ ...n, params: p }));
        }
      : null;
    let response: JsonObject;
    try {
      response = await child.request(
        { method: msg.method as string, ...(params !== undefined ? { params } : {}) },
        this.config.timeoutMs,
        onNotification,
        (cancel) => onClientGone(x, cancel),
      );
    } catch (err) {
      if (stream && err instanceof GatewayError) {
        // Headers are sent: the error travels as the JSON-RPC response on the stream.
        x.res.end(sseEvent({ jsonrpc: "2.0", id: msg.id, error: { code: err.code, message: err.message } }));
        return;
      }
      throw err;
    }
    const out: JsonObject = { jsonrpc: "2.0", id: msg.id };
    if ("error" in response) out.error = response.error;
    else {
      let result = (response.result as JsonObject) ?? {};
      if (modern) result = modernResult(msg.method as string, result, child.init as ChildInit);
      if (x.filter) result = filterResult(msg.method, result, x.filter);
      out.result = result;
    }
    if (stream) x.res.end(sseEvent(out));
    else sendJson(x.res, 200, out);
  }

  private async initializeSession(x: PostExchange, key: string): Promise<void> {
    const child = await this.acquire(key);
    const init = child.init as ChildInit;
    const params = x.msg.message.params as JsonObject | undefined;
    const requested = params?.protocolVersion;
    const protocolVersion = (LEGACY_PROTOCOL_VERSIONS as readonly unknown[]).includes(requested)
      ? (requested as string)
      : LEGACY_PROTOCOL_VERSIONS[0];
    const sessionId = randomUUID();
    this.sessions.bind(sessionId, x.principal.id, this.name);
    const result: JsonObject = {
      protocolVersion,
      capabilities: init.capabilities,
      serverInfo: init.serverInfo,
      ...(init.instructions !== undefined ? { instructions: init.instructions } : {}),
    };
    sendJson(x.res, 200, { jsonrpc: "2.0", id: x.msg.id, result }, { [SESSION_HEADER]: sessionId });
  }

  private requireSession(x: Pick<PostExchange, "headers" | "principal">): string {
    const session = x.headers[SESSION_HEADER];
    if (typeof session !== "string") {
      throw new GatewayError(
        400,
        RpcCode.InvalidRequest,
        "Bad Request: Mcp-Session-Id header is required (send initialize first, or use protocol 2026-07-28)",
        "legacy request without a session",
      );
    }
    this.sessions.require(session, x.principal.id, this.name);
    return session;
  }

  async get(x: StreamExchange): Promise<void> {
    if (typeof x.headers[SESSION_HEADER] !== "string") {
      throw new GatewayError(
        405,
        RpcCode.InvalidRequest,
        "Method Not Allowed: GET needs an Mcp-Session-Id (2025-x)",
        "GET without session",
      );
    }
    this.requireSession(x);
    const slot = this.slot(this.slotKey(x.principal.id));
    x.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    x.res.flushHeaders();
    slot.streams.add(x.res);
    await new Promise<void>((resolve) => {
      x.res.on("close", () => {
        slot.streams.delete(x.res);
        resolve();
      });
    });
  }

  async delete(x: StreamExchange): Promise<void> {
    const session = this.requireSession(x);
    this.sessions.unbind(session);
    x.res.writeHead(204).end();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    const stops: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      for (const res of slot.streams) res.end();
      if (slot.child) {
        slot.child.stopping = true;
        stops.push(slot.child.stop());
      }
    }
    this.slots.clear();
    await Promise.all(stops);
  }
}

/** How long after its last crash a child may be restarted: 0 after one crash, then doubling. */
export function restartBackoffMs(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 250 * 2 ** (crashes - 2));
}

function hasProgressToken(params: JsonObject | undefined): boolean {
  const meta = params?._meta as JsonObject | undefined;
  return meta !== undefined && meta !== null && meta.progressToken !== undefined;
}
