/**
 * The two shapes every reply the gateway writes itself takes: a JSON body (RFC 8259), sent
 * with its length in one write, and a JSON-RPC message framed as one Server-Sent Event
 * (WHATWG HTML §9.2; MCP Streamable HTTP sends each message as a `message` event).
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";

/** Writes `body` as JSON with status and headers, head and body in one write. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** One JSON-RPC message as a complete SSE `message` event. */
export function sseEvent(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}
