/**
 * The tools each configured server offers, as learnt from the `tools/list` results this
 * replica relays (MCP server/tools "Listing Tools"): which names exist, and the
 * `x-mcp-header` parameters of each (./paramHeaders.ts). A call to a tool the server's list
 * did not name is refused before review, since the tool cannot run (MCP server/tools
 * "Error Handling": unknown tools are -32602), so it never costs an approval or a webhook.
 */
import { GatewayError, RpcCode } from "../core/errors.js";
import type { ClassifiedMessage } from "./message.js";
import { isObject, type ParamBinding, paramBindings } from "./paramHeaders.js";

/** Largest number of tools remembered per server; past it, nothing is called unlisted. */
const MAX_TOOLS_PER_SERVER = 4096;

export class ListedTools {
  private readonly servers = new Map<string, Map<string, Map<string, ParamBinding> | null>>();

  /** Sees the tools of a tools/list result (one page) of `server` (only configured servers reach here). */
  observe(server: string, tools: readonly unknown[]): void {
    let known = this.servers.get(server);
    if (known === undefined) {
      known = new Map();
      this.servers.set(server, known);
    }
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool.name !== "string") continue;
      if (!known.has(tool.name) && known.size >= MAX_TOOLS_PER_SERVER) continue;
      known.set(tool.name, paramBindings(tool.inputSchema));
    }
  }

  /** The tool's `x-mcp-header` bindings; undefined when never listed, null when invalid. */
  bindings(server: string, tool: string): Map<string, ParamBinding> | null | undefined {
    return this.servers.get(server)?.get(tool);
  }

  /**
   * The refusal for a tools/call of a tool this server's list did not name, or null (not a
   * tools/call, the list was never seen here, or the tool is listed).
   */
  unlistedTool(server: string, msg: ClassifiedMessage): GatewayError | null {
    if (msg.method !== "tools/call" || msg.name === null) return null;
    const known = this.servers.get(server);
    if (known === undefined || known.size >= MAX_TOOLS_PER_SERVER || known.has(msg.name)) return null;
    return new GatewayError(
      400,
      RpcCode.InvalidParams,
      `Unknown tool: ${msg.name}`,
      `tool ${msg.name} is not in the tools/list of ${server}: not sent to review`,
    ).withId(msg.id);
  }
}
