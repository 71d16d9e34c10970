/**
 * Host and Origin must name this gateway (MCP Streamable HTTP "Security Warning": DNS
 * rebinding protection); see src/listener/hostCheck.ts.
 */
import { forbidden } from "../../core/errors.js";
import { deny, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function host({ hostCheck }: StageDeps): Step {
  return (call) => {
    const problem = hostCheck(call.headers);
    return problem === null ? undefined : deny(forbidden(problem), problem);
  };
}
