/**
 * What the listener hands to an upstream: the authenticated principal, the classified
 * message and the raw response to write to. Upstreams write the reply themselves so that
 * SSE streams pass through without buffering.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { ClassifiedMessage } from "../classify/message.js";
import type { Principal } from "../core/principal.js";

export interface ListFilter {
  /** Keep this entry (tool or prompt name, resource URI or URI template) in a list result. */
  visible(listMethod: string, name: string): boolean;
  /** Sees every tool definition of a tools/list result before filtering (tool pinning). */
  observeTools?(tools: readonly unknown[]): void;
}

export interface PostExchange {
  principal: Principal;
  msg: ClassifiedMessage;
  headers: IncomingHttpHeaders;
  res: ServerResponse;
  /** Set when the caller sees only part of the server: lists are filtered and private. */
  filter: ListFilter | null;
  /** Aborted when the client goes away; without it, forwarding watches `res` closing itself. */
  signal?: AbortSignal;
  /** `Mcp-Param-*` headers rebuilt from the body (classify/paramHeaders.ts); never the client's. */
  paramHeaders?: Readonly<Record<string, string>>;
}

export interface StreamExchange {
  principal: Principal;
  headers: IncomingHttpHeaders;
  res: ServerResponse;
  signal?: AbortSignal;
}

export interface Upstream {
  readonly name: string;
  post(x: PostExchange): Promise<void>;
  /** Legacy (2025-x) standalone SSE stream. */
  get(x: StreamExchange): Promise<void>;
  /** Legacy session termination. */
  delete(x: StreamExchange): Promise<void>;
  /** Number of live child processes (stdio) for metrics; 0 for HTTP. */
  processes(): number;
  /**
   * Checks that the server can be reached (stdio: its command can be run; HTTP: it answers)
   * and reports the result to the gateway's upstream health (./upstreamChecks.ts).
   */
  check?(): Promise<void>;
  /** Whether {@link check} is cheap enough to repeat while the server is idle (HTTP). */
  readonly probed?: boolean;
  close(): Promise<void>;
}

/**
 * Client header names forwarded to an upstream: MCP's own; never credentials. `Mcp-Param-*`
 * are not copied: the gateway checks them and sends its own, rebuilt from the body.
 */
export const FORWARDED_HEADERS: readonly string[] = [
  "mcp-protocol-version",
  "mcp-method",
  "mcp-name",
  "last-event-id",
];

/**
 * Calls `gone` once if the client goes away before its reply is complete (the exchange's
 * signal aborts or, without one, the response closes unfinished); returns the unsubscriber.
 * Watching the response needs no AbortController per request.
 */
export function onClientGone(x: { res: ServerResponse; signal?: AbortSignal }, gone: () => void): () => void {
  const { signal, res } = x;
  if (signal !== undefined) {
    if (signal.aborted) {
      gone();
      return noop;
    }
    signal.addEventListener("abort", gone, { once: true });
    return () => signal.removeEventListener("abort", gone);
  }
  // Already gone (e.g. while authentication awaited the store): no close event will come.
  if (res.closed) {
    if (!res.writableFinished) gone();
    return noop;
  }
  const onClose = () => {
    if (!res.writableFinished) gone();
  };
  res.once("close", onClose);
  return () => res.removeListener("close", onClose);
}

function noop(): void {}
