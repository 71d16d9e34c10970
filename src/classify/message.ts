/**
 * JSON-RPC 2.0 message classification (MCP basic protocol). The body is parsed exactly
 * once; what is forwarded upstream is re-serialised from this same parse, so the gateway
 * can never authorise one thing while the upstream reads another.
 */
import { GatewayError, type JsonRpcId, RpcCode } from "../core/errors.js";
import { MAX_MESSAGE_NESTING, nestsDeeperThan } from "./nesting.js";

export const MODERN_PROTOCOL_VERSION = "2026-07-28";
export const LEGACY_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18"] as const;
export const SUPPORTED_PROTOCOL_VERSIONS = [MODERN_PROTOCOL_VERSION, ...LEGACY_PROTOCOL_VERSIONS] as const;
export const META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion";

export type JsonObject = Record<string, unknown>;

export interface ClassifiedMessage {
  kind: "request" | "notification" | "response";
  /** Request or response id (null for notifications). */
  id: JsonRpcId;
  method: string | null;
  /** `params.name` (tools/call, prompts/get) or `params.uri` (resources/read, subscribe). */
  name: string | null;
  /** The 2026-07-28 per-request `_meta` protocol version, when present. */
  metaProtocolVersion: string | null;
  message: JsonObject;
}

/** Methods whose target is named by `params.name`. */
const NAMED_BY_NAME = new Set(["tools/call", "prompts/get"]);
/** Methods whose target is named by `params.uri`. */
const NAMED_BY_URI = new Set(["resources/read", "resources/subscribe", "resources/unsubscribe"]);

function invalid(reason: string, id: JsonRpcId = null): GatewayError {
  return new GatewayError(400, RpcCode.InvalidRequest, "Invalid Request", reason).withId(id);
}

function isId(v: unknown): v is string | number {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

export function classifyMessage(text: string): ClassifiedMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new GatewayError(400, RpcCode.ParseError, "Parse error", "body is not valid JSON");
  }
  if (Array.isArray(parsed)) {
    // JSON-RPC batching was removed from MCP in 2025-06-18; no supported revision allows it.
    throw invalid("JSON-RPC batches are not supported by MCP 2025-06-18 and later");
  }
  if (parsed === null || typeof parsed !== "object") throw invalid("body is not a JSON-RPC object");
  const message = parsed as JsonObject;
  const rawId = message.id;
  const id: JsonRpcId = isId(rawId) ? rawId : null;
  if (nestsDeeperThan(text, MAX_MESSAGE_NESTING)) {
    throw invalid(`message nested deeper than ${MAX_MESSAGE_NESTING} levels`, id);
  }
  if (message.jsonrpc !== "2.0") throw invalid('"jsonrpc" must be "2.0"', id);
  const hasId = "id" in message;
  if (hasId && !isId(rawId)) throw invalid('"id" must be a string or a number', null);
  const params = message.params;
  if (params !== undefined && (params === null || typeof params !== "object" || Array.isArray(params))) {
    throw invalid('"params" must be an object', id);
  }

  if (typeof message.method === "string") {
    const method = message.method;
    if (method.length === 0 || method.length > 256) throw invalid("method name is empty or too long", id);
    let name: string | null = null;
    const p = params as JsonObject | undefined;
    if (NAMED_BY_NAME.has(method)) {
      if (typeof p?.name !== "string") {
        throw new GatewayError(
          400,
          RpcCode.InvalidParams,
          "Invalid params",
          `${method} without a string params.name`,
        ).withId(id);
      }
      name = p.name;
      // MCP schema: CallToolRequest / GetPromptRequest `arguments` is an object when present; a
      // number or array here is the client's error, not the upstream's -32603.
      const args = p.arguments;
      if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) {
        throw new GatewayError(
          400,
          RpcCode.InvalidParams,
          "Invalid params",
          `${method} params.arguments must be an object`,
        ).withId(id);
      }
    } else if (NAMED_BY_URI.has(method)) {
      if (typeof p?.uri !== "string") {
        throw new GatewayError(
          400,
          RpcCode.InvalidParams,
          "Invalid params",
          `${method} without a string params.uri`,
        ).withId(id);
      }
      name = p.uri;
    }
    const meta = p?._meta;
    let metaProtocolVersion: string | null = null;
    if (meta !== null && typeof meta === "object") {
      const v = (meta as JsonObject)[META_PROTOCOL_VERSION];
      if (typeof v === "string") metaProtocolVersion = v;
    }
    return { kind: hasId ? "request" : "notification", id, method, name, metaProtocolVersion, message };
  }
  if ("method" in message) throw invalid('"method" must be a string', id);
  if (hasId && ("result" in message || "error" in message)) {
    return { kind: "response", id, method: null, name: null, metaProtocolVersion: null, message };
  }
  throw invalid("not a JSON-RPC request, notification or response", id);
}
