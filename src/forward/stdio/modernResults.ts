/**
 * What a 2026-07-28 client needs of a stdio child that speaks only a 2025 revision: the
 * `server/discover` answer built from the child's initialize result, and the fields 2026-07-28
 * requires of results that a legacy child does not produce.
 */
import { type JsonObject, SUPPORTED_PROTOCOL_VERSIONS } from "../../classify/message.js";
import type { ChildInit } from "./child.js";

const SERVER_INFO_META = "io.modelcontextprotocol/serverInfo";
const CACHEABLE = new Set([
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/read",
  "resources/templates/list",
]);

/** 2026-07-28 server/discover, answered for a legacy child from its initialize result. */
export function discoverResult(init: ChildInit): JsonObject {
  return {
    resultType: "complete",
    supportedVersions: [...SUPPORTED_PROTOCOL_VERSIONS],
    capabilities: init.capabilities,
    ...(init.instructions !== undefined ? { instructions: init.instructions } : {}),
    _meta: { [SERVER_INFO_META]: init.serverInfo },
    ttlMs: 60_000,
    cacheScope: "private",
  };
}

/** Adds the fields 2026-07-28 requires of results that a legacy child does not produce. */
export function modernResult(method: string, result: JsonObject, init: ChildInit): JsonObject {
  const out: JsonObject = { ...result };
  if (out.resultType === undefined) out.resultType = "complete";
  const meta = (out._meta as JsonObject | undefined) ?? {};
  if (meta[SERVER_INFO_META] === undefined) out._meta = { ...meta, [SERVER_INFO_META]: init.serverInfo };
  if (CACHEABLE.has(method)) {
    if (out.ttlMs === undefined) out.ttlMs = 0;
    // Behind an authenticating gateway a result is never for shared caches.
    out.cacheScope = "private";
  }
  return out;
}
