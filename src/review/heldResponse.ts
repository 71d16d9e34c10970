/**
 * The response stream of a call held open for review (MCP 2025-11-25 and earlier, Streamable
 * HTTP: a POST may be answered with an SSE stream carrying notifications before the
 * response). While the call waits, the stream carries `notifications/progress` for the
 * request's progressToken (MCP basic/utilities/progress) every few seconds, or SSE comments
 * when the client sent none, so neither the client nor an intermediary gives up on it.
 *
 * Once approved, the upstream writes its reply into a `HeldResponse`, which stands in for the
 * ServerResponse: an SSE reply passes through event by event; a JSON reply (or a refusal)
 * becomes one `message` event on the already open stream.
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Writable } from "node:stream";
import type { JsonRpcId } from "../core/errors.js";

import { sseEvent } from "../core/reply.js";

export { sseEvent };

/** Opens the SSE stream on the client's response (headers flushed at once). */
export function openHeldStream(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
}

export class HeldResponse extends Writable {
  statusCode = 200;
  headersSent = false;
  private sse = false;
  private readonly buffer: Buffer[] = [];
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly id: JsonRpcId,
  ) {
    super();
    this.on("close", () => {
      // Destroyed before a reply was relayed (upstream failure): the client still gets one.
      if (!this.ended) this.fail(-32603, "Upstream failed after approval");
    });
  }

  writeHead(status: number, headers?: OutgoingHttpHeaders | Record<string, string>): this {
    this.statusCode = status;
    this.headersSent = true;
    const type = String((headers as Record<string, unknown> | undefined)?.["content-type"] ?? "");
    this.sse = type.startsWith("text/event-stream");
    return this;
  }

  flushHeaders(): void {}

  setHeader(): this {
    return this;
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const data = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.sse) this.res.write(data, () => done());
    else {
      this.buffer.push(data);
      done();
    }
  }

  override _final(done: (err?: Error | null) => void): void {
    this.ended = true;
    if (this.sse) {
      this.res.end();
      done();
      return;
    }
    const text = Buffer.concat(this.buffer).toString("utf8");
    let message: unknown = null;
    try {
      message = text.length > 0 ? JSON.parse(text) : null;
    } catch {
      message = null;
    }
    if (
      message !== null &&
      typeof message === "object" &&
      (message as { jsonrpc?: unknown }).jsonrpc === "2.0"
    ) {
      this.res.end(sseEvent(message));
    } else {
      this.ended = false;
      this.fail(-32603, `Upstream answered ${this.statusCode} without a JSON-RPC message`);
    }
    done();
  }

  private fail(code: number, message: string): void {
    if (this.ended || this.res.writableEnded) return;
    this.ended = true;
    this.res.end(sseEvent({ jsonrpc: "2.0", id: this.id, error: { code, message } }));
  }
}
