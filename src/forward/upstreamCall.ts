/**
 * One POST to an HTTP upstream as an undici dispatch handler (undici `Dispatcher.dispatch`):
 * the reply is either collected whole, bounded by `maxResponseBytes`, or, for an SSE stream
 * (MCP Streamable HTTP §"Sending Messages"), written on to the client event by event with
 * backpressure. Compared with `pool.stream` this needs no Writable sink, no factory and no
 * AbortSignal per call: the handler aborts through undici's own controller.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Writable } from "node:stream";
import type { Dispatcher } from "undici";

/** Why a call was aborted by the gateway itself. */
export type AbortCause = "deadline" | "client-gone" | "overflow";

export class UpstreamCall implements Dispatcher.DispatchHandler {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** Set once the gateway aborted the call, with why. */
  aborted: AbortCause | null = null;
  /** Set when the reply went to `sink` instead of being collected. */
  streamed = false;
  private controller: Dispatcher.DispatchController | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private sink: Writable | null = null;
  private settle: ((err: Error | null) => void) | null = null;
  readonly done: Promise<void>;

  constructor(
    private readonly maxBytes: number,
    /** Called with the status and headers; returns where the body goes, or null to collect it. */
    private readonly onHead: (statusCode: number, headers: IncomingHttpHeaders) => Writable | null,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err === null ? resolve() : reject(err));
    });
  }

  /**
   * Aborts the call; the first cause wins. A call still queued for a free connection fails at
   * once (a full pool must not hold the caller past its deadline) and is dropped by undici
   * when its turn comes (onRequestStart), before a byte of it is written.
   */
  abort(cause: AbortCause): void {
    if (this.aborted !== null || this.settle === null) return;
    this.aborted = cause;
    const reason = new Error(`upstream call aborted: ${cause}`);
    if (this.controller !== null) this.controller.abort(reason);
    else this.finish(reason);
  }

  /** The collected body: one buffer, copied only when it arrived in several chunks. */
  get body(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0] as Buffer;
    return Buffer.concat(this.chunks, this.size);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted !== null) controller.abort(new Error(`upstream call aborted: ${this.aborted}`));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    this.statusCode = statusCode;
    this.headers = headers;
    this.sink = this.onHead(statusCode, headers);
    this.streamed = this.sink !== null;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const sink = this.sink;
    if (sink !== null) {
      if (!sink.write(chunk)) {
        controller.pause();
        sink.once("drain", () => controller.resume());
      }
      return;
    }
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.abort("overflow");
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.sink?.end();
    this.finish(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.finish(error);
  }

  private finish(err: Error | null): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(err);
  }
}
