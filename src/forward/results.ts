/**
 * Rewrites of upstream results the gateway owns: tools/list filtered to what the caller may
 * use, and filtered lists marked `cacheScope: "private"` (MCP 2026-07-28 CacheableResult)
 * so no shared cache can hand one caller's view to another.
 */
import type { JsonObject } from "../classify/message.js";
import type { ListFilter } from "./upstream.js";

export function filterResult(method: string | null, result: JsonObject, filter: ListFilter): JsonObject {
  if (method === "tools/list" && Array.isArray(result.tools)) {
    const tools = (result.tools as JsonObject[]).filter(
      (t) => typeof t?.name === "string" && filter.tool(t.name),
    );
    return { ...result, tools, cacheScope: "private" };
  }
  if (method === "resources/list" || method === "prompts/list" || method === "resources/templates/list") {
    return { ...result, cacheScope: "private" };
  }
  return result;
}

/** Applies filterResult to a JSON-RPC response message if it answers `id`. */
export function filterResponse(
  response: JsonObject,
  id: unknown,
  method: string | null,
  filter: ListFilter,
): JsonObject {
  if (response.id !== id || response.result === null || typeof response.result !== "object") return response;
  return { ...response, result: filterResult(method, response.result as JsonObject, filter) };
}
