/**
 * MCP `ToolAnnotations` (spec 2025-06-18 and later, server/tools "Tool", schema
 * `ToolAnnotations`) → the risk tier policy reads.
 *
 * - `readOnlyHint` (default false): the tool does not modify its environment.
 * - `destructiveHint` (default true, meaningful only when not read-only): it may perform
 *   destructive updates; false means additive updates only.
 * - `openWorldHint` (default true): it may interact with an open world of external entities.
 *
 * Annotations come from the server and are only hints (the spec: clients MUST consider them
 * untrusted unless they come from trusted servers), so a missing annotation — or one that is
 * not a boolean — means the stricter value, and an operator pin overrides them entirely.
 */
import type { RiskTier } from "./policy/types.js";

/** An operator's pin for one tool (config `servers.<name>.tools.<tool>`). */
export interface TierPin {
  tier: RiskTier;
  /** Absent: taken from the annotations (missing there = true). */
  openWorld?: boolean | undefined;
}

export interface ToolRisk {
  tier: RiskTier;
  openWorld: boolean;
  /** Where the tier came from: the server's annotations or the operator's pin. */
  source: "annotations" | "operator";
}

/** Order of strictness, for comparing tiers. */
const RANK: Readonly<Record<RiskTier, number>> = { read: 0, write: 1, destructive: 2 };

/** The stricter of two tiers. */
export function stricterTier(a: RiskTier, b: RiskTier): RiskTier {
  return RANK[a] >= RANK[b] ? a : b;
}

/** A boolean hint, or undefined when absent, inherited or not a boolean. */
function hint(annotations: unknown, name: string): boolean | undefined {
  if (typeof annotations !== "object" || annotations === null || Array.isArray(annotations)) return undefined;
  if (!Object.hasOwn(annotations, name)) return undefined;
  const value = (annotations as Record<string, unknown>)[name];
  return typeof value === "boolean" ? value : undefined;
}

/** The open-world flag the annotations claim: only an explicit `false` closes the world. */
function openWorldOf(annotations: unknown): boolean {
  return hint(annotations, "openWorldHint") !== false;
}

/**
 * The tier of a tool: `readOnlyHint: true` → read; otherwise `destructiveHint: false` →
 * write; otherwise destructive. An operator pin wins; its `openWorld`, when given, too.
 */
export function riskTierOf(annotations: unknown, pin?: TierPin): ToolRisk {
  if (pin !== undefined) {
    return { tier: pin.tier, openWorld: pin.openWorld ?? openWorldOf(annotations), source: "operator" };
  }
  const tier: RiskTier =
    hint(annotations, "readOnlyHint") === true
      ? "read"
      : hint(annotations, "destructiveHint") === false
        ? "write"
        : "destructive";
  return { tier, openWorld: openWorldOf(annotations), source: "annotations" };
}
