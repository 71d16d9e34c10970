/**
 * One stdio MCP server child process (MCP basic/transports/stdio): newline-delimited
 * JSON-RPC on stdin/stdout, stderr is the server's log. The gateway is the MCP client of
 * the child: it performs the initialize handshake once and then multiplexes the requests
 * of one caller's sessions over it, with its own request ids.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import type { JsonObject } from "../../classify/message.js";
import type { StdioServerConfig } from "../../config/schema.js";
import { GatewayError, RpcCode } from "../../core/errors.js";
import { OutputTail } from "../../telemetry/upstreamHealth.js";

export const CHILD_PROTOCOL_VERSION = "2025-11-25";

interface Pending {
  resolve(response: JsonObject): void;
  reject(err: GatewayError): void;
  onNotification: ((n: JsonObject) => void) | null;
  progressToken: string | null;
  timer: NodeJS.Timeout;
  /** Stops watching for the client going away. */
  unwatch: (() => void) | null;
}

export interface ChildInit {
  protocolVersion: string;
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions?: string;
}

/** Variables a child needs to run at all; everything else comes from the server's config. */
const INHERITED_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT"];

export class StdioChild {
  private proc: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private nextToken = 1;
  private pending = new Map<number, Pending>();
  private progress = new Map<string, Pending>();
  private exited = false;
  lastActivity = Date.now();
  /** Set when the gateway stops the child on purpose (reaping, shutdown): not a crash. */
  stopping = false;
  init: ChildInit | null = null;
  /** Server-initiated notifications with no request to route to (list changes, logs). */
  onBroadcast: ((n: JsonObject) => void) | null = null;
  /** Each stderr line as it comes (set only when someone reads them: debug logging). */
  onStderr: ((line: string) => void) | null = null;
  /** The last lines the process wrote to stderr (bounded), for the crash report. */
  private readonly stderr = new OutputTail();
  /** Settles once stderr is closed: every line the process wrote is in the tail. */
  readonly stderrClosed: Promise<void>;

  constructor(
    private readonly server: string,
    config: StdioServerConfig,
    env: Record<string, string>,
    private readonly log: Logger,
    /** `detail` says why, for the health report and the error log ("exited with code 1"). */
    onExit: (child: StdioChild, code: number | null, signal: NodeJS.Signals | null, detail: string) => void,
  ) {
    const baseEnv: Record<string, string> = {};
    for (const name of INHERITED_ENV) {
      const v = process.env[name];
      if (v !== undefined) baseEnv[name] = v;
    }
    this.proc = spawn(config.command, config.args, {
      env: { ...baseEnv, ...env },
      cwd: config.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const terminated = (detail: string, code: number | null, signal: NodeJS.Signals | null) => {
      if (this.exited) return;
      const why =
        code === null && signal === null
          ? detail
          : `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;
      this.exited = true;
      this.failAll(
        new GatewayError(
          502,
          RpcCode.UpstreamUnavailable,
          "Upstream server process exited",
          `stdio upstream ${server} ${detail}`,
        ),
      );
      onExit(this, code, signal, why);
    };
    // A command that cannot start (ENOENT, EACCES) emits 'error' and never 'exit'; the
    // supervisor (./bridge.ts) reports it with the fix.
    this.proc.on("error", (err) => {
      terminated(`failed to start: ${err.message}`, null, null);
    });
    this.proc.stdin.on("error", () => {}); // EPIPE after exit is handled by the exit path
    this.proc.on("exit", (code, signal) => {
      terminated(`exited (code ${code}, signal ${signal}) with the call in flight`, code, signal);
    });
    createInterface({ input: this.proc.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
      this.onLine(line),
    );
    const stderrLines = createInterface({ input: this.proc.stderr, crlfDelay: Number.POSITIVE_INFINITY });
    stderrLines.on("line", (line) => {
      this.stderr.push(line);
      this.onStderr?.(line);
    });
    this.stderrClosed = new Promise((resolve) => stderrLines.once("close", resolve));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** The last lines written to stderr (bounded: HEALTH_LIMITS), unmasked: mask before showing. */
  stderrTail(): string[] {
    return this.stderr.get();
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Performs the MCP initialize handshake as the gateway's own client. */
  async initialize(timeoutMs: number, clientVersion: string): Promise<ChildInit> {
    const response = await this.request(
      {
        method: "initialize",
        params: {
          protocolVersion: CHILD_PROTOCOL_VERSION,
          capabilities: {},
          clientInfo: { name: "portcullis", version: clientVersion },
        },
      },
      timeoutMs,
      null,
    );
    const result = response.result as JsonObject | undefined;
    if (!result || typeof result.protocolVersion !== "string") {
      throw new GatewayError(
        502,
        RpcCode.UpstreamUnavailable,
        "Upstream server failed to initialize",
        `stdio upstream ${this.server} answered initialize with ${JSON.stringify(response).slice(0, 300)}`,
      );
    }
    this.write({ jsonrpc: "2.0", method: "notifications/initialized" });
    this.init = {
      protocolVersion: result.protocolVersion,
      capabilities: (result.capabilities as JsonObject) ?? {},
      serverInfo: (result.serverInfo as JsonObject) ?? { name: this.server, version: "unknown" },
      ...(typeof result.instructions === "string" ? { instructions: result.instructions } : {}),
    };
    return this.init;
  }

  /**
   * Sends a request with a gateway-chosen id and resolves with the child's response.
   * A `_meta.progressToken` is replaced by a gateway token so that progress notifications
   * are routed back to this request only.
   */
  request(
    message: { method: string; params?: unknown },
    timeoutMs: number,
    onNotification: ((n: JsonObject) => void) | null,
    /** Subscribes `cancel` to the client going away; returns the unsubscriber. */
    watchClient?: (cancel: () => void) => () => void,
  ): Promise<JsonObject> {
    if (this.exited) {
      return Promise.reject(
        new GatewayError(
          502,
          RpcCode.UpstreamUnavailable,
          "Upstream server process exited",
          `stdio upstream ${this.server} is not running`,
        ),
      );
    }
    const id = this.nextId++;
    let params = message.params as JsonObject | undefined;
    let progressToken: string | null = null;
    const meta = params?._meta as JsonObject | undefined;
    if (meta && (typeof meta.progressToken === "string" || typeof meta.progressToken === "number")) {
      progressToken = `p${this.nextToken++}`;
      params = { ...params, _meta: { ...meta, progressToken } };
    }
    return new Promise<JsonObject>((resolve, reject) => {
      const entry: Pending = {
        resolve,
        reject,
        onNotification,
        progressToken,
        unwatch: null,
        timer: setTimeout(() => {
          this.settle(id);
          this.write({
            jsonrpc: "2.0",
            method: "notifications/cancelled",
            params: { requestId: id, reason: "timeout" },
          });
          reject(
            new GatewayError(
              504,
              RpcCode.UpstreamTimeout,
              "Upstream timed out",
              `stdio upstream ${this.server} did not answer within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs),
      };
      this.pending.set(id, entry);
      if (progressToken) this.progress.set(progressToken, entry);
      if (watchClient !== undefined) {
        entry.unwatch = watchClient(() => {
          if (!this.pending.has(id)) return;
          this.settle(id);
          this.write({
            jsonrpc: "2.0",
            method: "notifications/cancelled",
            params: { requestId: id, reason: "client disconnected" },
          });
          reject(new GatewayError(499, RpcCode.InternalError, "Client closed request", "client went away"));
        });
      }
      this.lastActivity = Date.now();
      this.write({ jsonrpc: "2.0", id, method: message.method, ...(params !== undefined ? { params } : {}) });
    });
  }

  /** Forwards a client notification (e.g. cancellation) as is. */
  notify(message: JsonObject): void {
    this.write(message);
  }

  private settle(id: number): Pending | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    entry.unwatch?.();
    this.pending.delete(id);
    if (entry.progressToken) this.progress.delete(entry.progressToken);
    return entry;
  }

  private write(message: JsonObject): void {
    if (this.exited) return;
    this.proc.stdin.write(`${JSON.stringify(message)}\n`);
  }

  private onLine(line: string): void {
    if (line.trim() === "") return;
    let msg: JsonObject;
    try {
      msg = JSON.parse(line) as JsonObject;
    } catch {
      this.log.warn(
        { server: this.server, line: line.slice(0, 200) },
        "stdio upstream wrote a non-JSON line",
      );
      return;
    }
    this.lastActivity = Date.now();
    if (typeof msg.method === "string") {
      if ("id" in msg) {
        this.answerServerRequest(msg);
        return;
      }
      const params = msg.params as JsonObject | undefined;
      const token = params?.progressToken;
      if (msg.method === "notifications/progress" && typeof token === "string") {
        this.progress.get(token)?.onNotification?.(msg);
        return;
      }
      this.onBroadcast?.(msg);
      return;
    }
    if (typeof msg.id === "number") {
      const entry = this.settle(msg.id);
      entry?.resolve(msg);
    }
  }

  /**
   * The gateway declared no client capabilities to the child, so server-initiated requests
   * (sampling, elicitation, roots) are not routed to callers: ping is answered, the rest
   * refused with a clear error instead of hanging the child.
   */
  private answerServerRequest(msg: JsonObject): void {
    if (msg.method === "ping") {
      this.write({ jsonrpc: "2.0", id: msg.id, result: {} });
      return;
    }
    this.write({
      jsonrpc: "2.0",
      id: msg.id,
      error: {
        code: RpcCode.MethodNotFound,
        message: `${String(msg.method)} is not bridged by the Portcullis gateway`,
      },
    });
  }

  private failAll(err: GatewayError): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }

  /** Graceful stop: close stdin, then SIGTERM, then SIGKILL (MCP stdio §"Shutdown"). */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once("exit", () => resolve());
      this.proc.stdin.end();
      const term = setTimeout(() => this.proc.kill("SIGTERM"), 1000);
      const kill = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      term.unref();
      kill.unref();
    });
  }
}
