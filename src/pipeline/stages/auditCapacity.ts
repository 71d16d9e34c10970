/**
 * Audit capacity: the trail cannot take more (the store has been failing), so the request
 * is refused before any work: nothing is forwarded unrecorded and memory stays bounded.
 * This refusal cannot be recorded itself; the writer counts it (noteUnrecorded).
 */
import { storeUnavailable } from "../../core/errors.js";
import { type Step, unrecorded } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function auditCapacity({ audit, metrics }: StageDeps): Step {
  return () => {
    if (audit.accepting()) return undefined;
    audit.noteUnrecorded();
    metrics.auditBacklogRefusals.inc();
    return unrecorded(storeUnavailable("audit backlog full"));
  };
}
