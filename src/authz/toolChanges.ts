/**
 * A pinned tool whose definition changed (src/authz/toolCatalogue.ts) is logged as a warning
 * and audited, whether this replica saw the change in a tools/list result or another replica
 * did (through the store): flagged, or blocked until an operator accepts it.
 */
import type { Logger } from "pino";
import type { ToolChange } from "./toolCatalogue.js";

/** Logs each change and hands it to `audit` (the composition root records it: src/audit/records.ts). */
export function toolChangeReporter(
  audit: (change: ToolChange) => void,
  log: Logger,
): (changes: readonly ToolChange[]) => void {
  return (changes) => {
    for (const c of changes) {
      const action = c.blocked ? "blocked until an operator accepts it" : "flagged";
      log.warn(
        { event: "tool.changed", server: c.server, tool: c.tool, fields: c.fields },
        `tool definition changed: ${action}`,
      );
      audit(c);
    }
  };
}
