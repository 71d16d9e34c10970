/**
 * MCP 2026-07-28 Streamable HTTP §"Standard Request Headers" and §"Server Validation":
 * `Mcp-Method` / `Mcp-Name` mirror the body and must match it; a mismatch is refused with
 * HeaderMismatch (-32020, HTTP 400). Mirrored headers are never trusted for any decision:
 * the gateway decides from the body and only checks that the headers agree with it.
 */
import type { IncomingHttpHeaders } from "node:http";
import { GatewayError, RpcCode } from "../core/errors.js";
import { type ClassifiedMessage, MODERN_PROTOCOL_VERSION } from "./message.js";

const BASE64_SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** Decodes the `=?base64?…?=` sentinel form (§"Value Encoding"); plain values pass through. */
export function decodeHeaderValue(value: string): string | null {
  const m = BASE64_SENTINEL.exec(value);
  if (!m) return value;
  const decoded = Buffer.from(m[1] as string, "base64");
  const text = decoded.toString("utf8");
  // Reject non-canonical or invalid UTF-8 encodings rather than guess.
  if (Buffer.from(text, "utf8").toString("base64") !== Buffer.from(decoded).toString("base64")) return null;
  return text;
}

/** -32020 HeaderMismatch (2026-07-28 transport): a mirrored header disagrees with the body. */
export function headerMismatch(detail: string, msg: ClassifiedMessage): GatewayError {
  return new GatewayError(
    400,
    RpcCode.HeaderMismatch,
    `Header mismatch: ${detail}`,
    `header mismatch: ${detail}`,
  ).withId(msg.id);
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(",") : v;
}

/** True for 2026-07-28 and later revisions (stateless, per-request `_meta`). */
export function isModernVersion(version: string | null | undefined): boolean {
  return typeof version === "string" && version >= MODERN_PROTOCOL_VERSION;
}

/**
 * Validates mirrored headers against the classified body. Headers that are present are
 * always checked, whatever the revision; on 2026-07-28 their absence is also an error.
 */
export function checkMirroredHeaders(headers: IncomingHttpHeaders, msg: ClassifiedMessage): void {
  if (msg.kind === "response") return;
  const headerVersion = single(headers["mcp-protocol-version"]);
  const modern = isModernVersion(headerVersion) || isModernVersion(msg.metaProtocolVersion);
  if (modern && msg.kind === "request" && headerVersion !== msg.metaProtocolVersion) {
    throw headerMismatch(
      `MCP-Protocol-Version header '${headerVersion ?? "(missing)"}' does not match body _meta version '${msg.metaProtocolVersion}'`,
      msg,
    );
  }
  const method = single(headers["mcp-method"]);
  if (method === undefined) {
    if (modern) throw headerMismatch("required Mcp-Method header is missing", msg);
  } else if (method !== msg.method) {
    throw headerMismatch(
      `Mcp-Method header value '${method}' does not match body value '${msg.method}'`,
      msg,
    );
  }
  const rawName = single(headers["mcp-name"]);
  if (rawName === undefined) {
    if (modern && msg.name !== null && msg.kind === "request") {
      throw headerMismatch("required Mcp-Name header is missing", msg);
    }
    return;
  }
  const name = decodeHeaderValue(rawName);
  if (name === null) throw headerMismatch("Mcp-Name header has an invalid base64 value", msg);
  if (msg.name === null || name !== msg.name) {
    throw headerMismatch(`Mcp-Name header value does not match body value for ${msg.method}`, msg);
  }
}
