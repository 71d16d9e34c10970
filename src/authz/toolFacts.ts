/**
 * What the gateway knows about one pinned tool, and what policy reads of it (`ToolFacts`):
 * its risk tier from the annotations of the accepted and the served definitions (MCP spec
 * 2025-06-18+, server/tools "ToolAnnotations"), an operator's tier pin, and its pin status.
 * Entries are immutable once built; ./toolCatalogue.ts swaps them in its maps, so the request
 * path reads precomputed, shared values and allocates nothing.
 */
import type { PinState } from "../store/toolPins.js";
import type { ToolPinRecord } from "../store/types.js";
import type { RiskTier } from "./policy/types.js";
import { riskTierOf, stricterTier, type TierPin, type ToolRisk } from "./riskTier.js";
import { type FieldMap, fieldsOfRecord, isObject, type PinnedField } from "./toolDefinition.js";

/** `flag`: a changed tool is reported (audit); `block`: it is also refused until accepted. */
export type PinMode = "flag" | "block";

export type PinStatus = "pinned" | "changed" | "unknown";

/** What policy reads about a tool; immutable and shared, so the request path allocates nothing. */
export interface ToolFacts {
  readonly tier: RiskTier;
  readonly openWorld: boolean;
  /** The annotations the server serves now ({} when it sent none or the tool is unknown). */
  readonly annotations: Readonly<Record<string, unknown>>;
  readonly pinStatus: PinStatus;
  /** `default`: an unknown tool without an operator pin is treated as destructive and open-world. */
  readonly tierSource: "annotations" | "operator" | "default";
}

/** A server changed a tool's definition after it was pinned: for the audit log. */
export interface ToolChange {
  server: string;
  tool: string;
  /** The accepted definition. */
  pinnedHash: string;
  /** What the server served before this observation, and what it serves now. */
  previousHash: string;
  currentHash: string;
  /** Fields of the current definition that differ from the pinned one. */
  fields: PinnedField[];
  at: Date;
  /** True when the tool is refused until accepted (mode `block`). */
  blocked: boolean;
}

/** One known tool of one server. */
export interface Entry {
  state: PinState;
  pinnedFields: FieldMap;
  currentFields: FieldMap;
  facts: ToolFacts;
  blocked: boolean;
  /** JSON.stringify of the raw tool last observed and its hash: skips re-hashing an unchanged list. */
  raw?: string;
  rawHash?: string;
}

/** server → tool → entry. */
export type EntryTable = Map<string, Map<string, Entry>>;

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});

/** A tool never listed and not pinned by the operator: destructive and open-world. */
export const UNKNOWN_FACTS: ToolFacts = Object.freeze({
  tier: "destructive",
  openWorld: true,
  annotations: EMPTY,
  pinStatus: "unknown",
  tierSource: "default",
});

/** The facts of a tool never listed, pinned by the operator. */
export function operatorFacts(pin: TierPin): ToolFacts {
  const risk = riskTierOf(EMPTY, pin);
  return Object.freeze({
    tier: risk.tier,
    openWorld: risk.openWorld,
    annotations: EMPTY,
    pinStatus: "unknown",
    tierSource: "operator",
  });
}

function frozenAnnotations(fields: FieldMap): Readonly<Record<string, unknown>> {
  const json = fields.annotations;
  if (json === undefined) return EMPTY;
  const value: unknown = JSON.parse(json);
  return isObject(value) ? Object.freeze(value) : EMPTY;
}

/** The server's tools in `table`, created empty when missing. */
export function toolsOf(table: EntryTable, server: string): Map<string, Entry> {
  let tools = table.get(server);
  if (tools === undefined) {
    tools = new Map();
    table.set(server, tools);
  }
  return tools;
}

/** Builds entries for one gateway: its pin mode and its operator's tier pins. */
export class EntryBuilder {
  constructor(
    readonly mode: PinMode,
    private readonly operator: ReadonlyMap<string, ReadonlyMap<string, TierPin>>,
  ) {}

  entry(server: string, tool: string, state: PinState, pinned: FieldMap, current: FieldMap): Entry {
    const pinnedAnnotations = frozenAnnotations(pinned);
    const currentAnnotations = current === pinned ? pinnedAnnotations : frozenAnnotations(current);
    const risk = pinnedToolRisk(
      state.status,
      pinnedAnnotations,
      currentAnnotations,
      this.operator.get(server)?.get(tool),
    );
    const facts: ToolFacts = Object.freeze({
      tier: risk.tier,
      openWorld: risk.openWorld,
      annotations: currentAnnotations,
      pinStatus: state.status,
      tierSource: risk.source,
    });
    return {
      state,
      pinnedFields: pinned,
      currentFields: current,
      facts,
      blocked: this.mode === "block" && state.status === "changed",
    };
  }

  /** The entry of a stored pin, reusing what `previous` already parsed. */
  fromRecord(r: ToolPinRecord, previous: Entry | undefined): Entry {
    const state: PinState = { status: r.status, pinnedHash: r.pinnedHash, currentHash: r.currentHash };
    const pinned =
      previous?.state.pinnedHash === r.pinnedHash
        ? previous.pinnedFields
        : fieldsOfRecord(r.pinnedDefinition);
    const current =
      r.currentHash === r.pinnedHash
        ? pinned
        : previous?.state.currentHash === r.currentHash
          ? previous.currentFields
          : fieldsOfRecord(r.currentDefinition);
    const e = this.entry(r.server, r.tool, state, pinned, current);
    if (previous?.raw !== undefined) {
      e.raw = previous.raw;
      e.rawHash = previous.rawHash;
    }
    return e;
  }
}

/**
 * The tier of a pinned tool. While it is `changed`, a change never lowers the tier: the
 * stricter of the accepted and the served claims (a destructive tool that starts claiming
 * `readOnlyHint` stays destructive until accepted). An operator pin wins.
 */
export function pinnedToolRisk(
  status: "pinned" | "changed",
  pinnedAnnotations: unknown,
  currentAnnotations: unknown,
  pin?: TierPin,
): ToolRisk {
  let risk = riskTierOf(currentAnnotations);
  if (status === "changed") {
    const before = riskTierOf(pinnedAnnotations);
    risk = {
      ...risk,
      tier: stricterTier(risk.tier, before.tier),
      openWorld: risk.openWorld || before.openWorld,
    };
  }
  if (pin === undefined) return risk;
  return { tier: pin.tier, openWorld: pin.openWorld ?? risk.openWorld, source: "operator" };
}

/** The risk of a stored pin (for `portcullis tools list`). */
export function recordRisk(record: ToolPinRecord, pin?: TierPin): ToolRisk {
  return pinnedToolRisk(
    record.status,
    record.pinnedDefinition.annotations,
    record.currentDefinition.annotations,
    pin,
  );
}
