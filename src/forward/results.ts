/**
 * Rewrites of upstream results the gateway owns: lists (tools, prompts, resources, resource
 * templates) filtered to what the caller may use, and marked `cacheScope: "private"` (MCP
 * 2026-07-28 CacheableResult) so no shared cache can hand one caller's view to another.
 */
import type { JsonObject } from "../classify/message.js";
import type { ListFilter } from "./upstream.js";

/** The array each list result carries and the field that names an entry. */
const LISTS: Readonly<Record<string, { field: string; key: string }>> = {
  "tools/list": { field: "tools", key: "name" },
  "prompts/list": { field: "prompts", key: "name" },
  "resources/list": { field: "resources", key: "uri" },
  "resources/templates/list": { field: "resourceTemplates", key: "uriTemplate" },
};

export function isListMethod(method: string | null): boolean {
  return method !== null && method in LISTS;
}

export function filterResult(method: string | null, result: JsonObject, filter: ListFilter): JsonObject {
  const list = method === null ? undefined : LISTS[method];
  if (list === undefined) return result;
  const entries = result[list.field];
  if (!Array.isArray(entries)) return { ...result, cacheScope: "private" };
  if (method === "tools/list") filter.observeTools?.(entries);
  const kept = entries.filter((e: unknown) => {
    const name = e !== null && typeof e === "object" ? (e as JsonObject)[list.key] : undefined;
    return typeof name === "string" && filter.visible(method as string, name);
  });
  return { ...result, [list.field]: kept, cacheScope: "private" };
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
