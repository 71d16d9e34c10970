/**
 * What an HTTP upstream may answer a POST with (MCP Streamable HTTP §"Sending Messages"):
 * `202 Accepted` with no body for a notification; for a request, a single JSON object
 * (`application/json`) or an SSE stream (`text/event-stream`). Anything else — HTML from a
 * proxy, a truncated or garbage body, a body over the size limit — is the upstream's fault,
 * and the client gets a spec-shaped JSON-RPC error (502) instead of it, never a 200.
 */
import { GatewayError, RpcCode } from "../core/errors.js";

const EVENT_STREAM = /^text\/event-stream\b/i;
const JSON_TYPE = /^application\/json\b/i;

export function isEventStream(contentType: string): boolean {
  return EVENT_STREAM.test(contentType);
}

function isJson(contentType: string): boolean {
  return JSON_TYPE.test(contentType);
}

function invalidReply(server: string, detail: string): GatewayError {
  return new GatewayError(
    502,
    RpcCode.UpstreamUnavailable,
    "Upstream sent an invalid response",
    `upstream ${server} ${detail}`,
  );
}

/** A JSON-RPC 2.0 message object (response or error) as the upstream's whole body. */
function isJsonRpcMessage(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return (
      parsed !== null &&
      typeof parsed === "object" &&
      !Array.isArray(parsed) &&
      (parsed as Record<string, unknown>).jsonrpc === "2.0"
    );
  } catch {
    return false;
  }
}

/**
 * The body to relay, or the error to answer instead. A 4xx other than 401/403 that is not
 * JSON keeps its status (404 still tells a legacy client to start a new session) with a
 * JSON-RPC error body; every other unusable reply is a 502.
 */
export function checkUpstreamReply(
  server: string,
  status: number,
  contentType: string,
  body: Buffer,
): { status: number; body: Buffer } | GatewayError {
  if (body.length === 0 && status >= 200 && status < 300) return { status, body };
  const what = `answered ${status} with ${contentType || "no content type"} (${body.length} bytes)`;
  if (isJson(contentType) && isJsonRpcMessage(body.toString("utf8"))) return { status, body };
  if (status >= 400 && status < 500 && status !== 401 && status !== 403) {
    return new GatewayError(
      status,
      status === 404 ? RpcCode.SessionNotFound : RpcCode.InvalidRequest,
      status === 404 ? "Not found upstream" : "Upstream refused the request",
      `upstream ${server} ${what}, not a JSON-RPC message`,
    );
  }
  return invalidReply(server, `${what}, not a JSON-RPC message`);
}

/** The error for a body larger than `max` bytes. */
export function tooLargeReply(server: string, max: number): GatewayError {
  return invalidReply(server, `sent a response body over ${max} bytes (servers.${server}.maxResponseBytes)`);
}
