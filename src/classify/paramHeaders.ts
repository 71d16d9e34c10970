/**
 * MCP 2026-07-28 Streamable HTTP §"Custom Headers from Tool Parameters": a tool's
 * `inputSchema` may mark parameters with `x-mcp-header`, and clients mirror their values
 * into `Mcp-Param-{Name}` headers. A server that processes the body MUST check that each
 * such header, decoded (§"Value Encoding"), matches the body, and refuse a disagreement with
 * HeaderMismatch (-32020, HTTP 400) (§"Server Behavior for Custom Headers").
 *
 * The gateway learns the annotations from the `tools/list` results it relays (./listedTools.ts). It checks the
 * client's headers against the body and never forwards them: the upstream gets headers
 * rebuilt from the body the gateway authorised, so a header can never say something the
 * body does not. A header the gateway cannot check (tool schema not seen) is dropped.
 */
import type { IncomingHttpHeaders } from "node:http";
import { decodeHeaderValue, headerMismatch as mismatch } from "./headers.js";
import type { ClassifiedMessage, JsonObject } from "./message.js";

export const PARAM_HEADER_PREFIX = "mcp-param-";

/** One annotated parameter: header name part, the `properties` path to it, its type. */
export interface ParamBinding {
  name: string;
  path: readonly string[];
  type: "string" | "integer" | "boolean";
}

/** RFC 9110 §5.1 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The `x-mcp-header` bindings of an input schema, reachable only through `properties`
 * chains (§"Schema Extension"), or null when an annotation is invalid (the tool's headers
 * are then never trusted nor forwarded).
 */
export function paramBindings(inputSchema: unknown): Map<string, ParamBinding> | null {
  const out = new Map<string, ParamBinding>();
  let valid = true;
  const visit = (node: JsonObject, path: string[], depth: number) => {
    if (depth > 32) return;
    const props = node.properties;
    if (!isObject(props)) return;
    for (const [key, child] of Object.entries(props)) {
      if (!isObject(child)) continue;
      const header = child["x-mcp-header"];
      if (header !== undefined) {
        const type = child.type;
        if (
          typeof header !== "string" ||
          !TOKEN.test(header) ||
          (type !== "string" && type !== "integer" && type !== "boolean") ||
          out.has(header.toLowerCase())
        ) {
          valid = false;
          continue;
        }
        out.set(header.toLowerCase(), { name: header, path: [...path, key], type });
      }
      visit(child, [...path, key], depth + 1);
    }
  };
  if (isObject(inputSchema)) visit(inputSchema, [], 0);
  return valid ? out : null;
}

function valueAt(args: unknown, path: readonly string[]): unknown {
  let v = args;
  for (const key of path) {
    if (!isObject(v)) return undefined;
    v = v[key];
  }
  return v;
}

/** §"Value Encoding": the body value as the header carries it (before any base64). */
function headerText(value: unknown, type: ParamBinding["type"]): string | null {
  if (type === "string") return typeof value === "string" ? value : null;
  if (type === "boolean") return typeof value === "boolean" ? String(value) : null;
  return Number.isSafeInteger(value) ? String(value) : null;
}

function matches(header: string, value: unknown, type: ParamBinding["type"]): boolean {
  // §"Server Validation": integers compare numerically (`42.0` equals `42`).
  if (type === "integer")
    return typeof value === "number" && header.trim() !== "" && Number(header) === value;
  return headerText(value, type) === header;
}

/** Plain visible ASCII without surrounding whitespace and not sentinel-shaped; else base64. */
export function encodeHeaderValue(text: string): string {
  const plain =
    /^[\x20-\x7e]*$/.test(text) &&
    text.trim() === text &&
    !(text.startsWith("=?base64?") && text.endsWith("?="));
  return plain ? text : `=?base64?${Buffer.from(text, "utf8").toString("base64")}?=`;
}

/**
 * Checks every `Mcp-Param-*` header the client sent against the body and returns the
 * headers to send upstream, rebuilt from the body. Throws HeaderMismatch on disagreement.
 */
export function checkParamHeaders(
  headers: IncomingHttpHeaders,
  msg: ClassifiedMessage,
  bindings: Map<string, ParamBinding> | null | undefined,
): Record<string, string> {
  const args =
    msg.method === "tools/call" ? (msg.message.params as JsonObject | undefined)?.arguments : undefined;
  for (const [field, raw] of Object.entries(headers)) {
    if (!field.startsWith(PARAM_HEADER_PREFIX) || raw === undefined) continue;
    const binding = bindings?.get(field.slice(PARAM_HEADER_PREFIX.length));
    // Not a parameter of this tool as far as the gateway knows: it cannot be checked, so it
    // is dropped below (never forwarded).
    if (binding === undefined || msg.method !== "tools/call") continue;
    if (Array.isArray(raw)) throw mismatch(`${field} header sent more than once`, msg);
    if (!/^[\x20-\x7e\t]*$/.test(raw)) throw mismatch(`${field} header has invalid characters`, msg);
    const decoded = decodeHeaderValue(raw);
    if (decoded === null) throw mismatch(`${field} header has an invalid base64 value`, msg);
    const value = valueAt(args, binding.path);
    if (value === undefined || value === null || !matches(decoded, value, binding.type)) {
      throw mismatch(`${field} header value does not match body parameter ${binding.path.join(".")}`, msg);
    }
  }
  const upstream: Record<string, string> = {};
  if (msg.method !== "tools/call" || !bindings) return upstream;
  for (const binding of bindings.values()) {
    const text = headerText(valueAt(args, binding.path), binding.type);
    if (text !== null)
      upstream[`${PARAM_HEADER_PREFIX}${binding.name.toLowerCase()}`] = encodeHeaderValue(text);
  }
  return upstream;
}
