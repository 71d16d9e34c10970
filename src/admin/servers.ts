/**
 * The configured servers as `portcullis servers list|status` and the console's Servers page
 * show them: transport, where the server is, its health as the running gateways last published
 * it (../telemetry/upstreamHealth.ts), its tools with their risk tier and pin state; and the
 * console's Accept of a changed tool (what `portcullis tools accept` does), audited.
 */

import { operatorPin } from "../authz/policy/caseInput.js";
import { recordRisk } from "../authz/toolCatalogue.js";
import { definitionChanges } from "../authz/toolDefinition.js";
import type { Config, UpstreamServer } from "../config/schema.js";
import type { Store, ToolAcceptOutcome, ToolPinRecord } from "../store/types.js";
import { type HealthState, readReports, type ServerHealth } from "../telemetry/upstreamHealth.js";
import type { AdminAudit } from "./actions.js";

/** One replica's view of one server. */
export interface ReplicaHealth extends ServerHealth {
  replica: string;
  reportedAt: string;
  /** The replica stopped after this report: its view is history, not the present. */
  gatewayStopped: boolean;
}

export interface ServerView {
  name: string;
  transport: "stdio" | "http";
  /** The command line (stdio) or the URL without query or user info (http). */
  target: string;
  /** Down when a running gateway sees it down; up when one sees it up; otherwise unknown. */
  state: HealthState;
  since: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  stderr: readonly string[];
  /** The replica whose report the fields above come from (null when none reported). */
  reportedBy: string | null;
  reportedAt: string | null;
  replicas: ReplicaHealth[];
}

export function serverTarget(server: UpstreamServer): string {
  if (server.transport === "stdio") return [server.command, ...server.args].join(" ");
  const url = new URL(server.url);
  return `${url.origin}${url.pathname}`;
}

/** The configured servers with their health as published by the gateways using this store. */
export async function serverViews(store: Store, config: Config): Promise<ServerView[]> {
  const reports = await readReports(store);
  return Object.entries(config.servers).map(([name, server]) => {
    const replicas: ReplicaHealth[] = [];
    for (const r of reports) {
      const h = r.servers[name];
      if (h !== undefined)
        replicas.push({ ...h, replica: r.replica, reportedAt: r.at, gatewayStopped: r.stopped });
    }
    const live = replicas.filter((r) => !r.gatewayStopped);
    const chosen =
      live.find((r) => r.state === "down") ??
      live.find((r) => r.state === "up") ??
      live[0] ??
      replicas.find((r) => r.lastError !== null) ??
      null;
    const state: HealthState = chosen === null || chosen.gatewayStopped ? "unknown" : chosen.state;
    return {
      name,
      transport: server.transport,
      target: serverTarget(server),
      state,
      since: state === "unknown" ? null : (chosen?.since ?? null),
      lastError: chosen?.lastError ?? null,
      lastErrorAt: chosen?.lastErrorAt ?? null,
      stderr: chosen?.stderr ?? [],
      reportedBy: chosen?.replica ?? null,
      reportedAt: chosen?.reportedAt ?? null,
      replicas,
    };
  });
}

export interface ToolView {
  server: string;
  tool: string;
  status: ToolPinRecord["status"];
  tier: string;
  openWorld: boolean;
  /** Refused until accepted (`pinning.onChange: block` and the definition changed). */
  blocked: boolean;
  pinnedHash: string;
  currentHash: string;
  /** What differs between the pinned and the current definition (empty while pinned). */
  changedFields: string[];
  changedAt: Date | null;
  acceptedAt: Date | null;
  acceptedBy: string | null;
}

/** Every tool the gateway has pinned, with its tier and pin state, ordered by server and tool. */
export async function toolViews(store: Store, config: Config): Promise<ToolView[]> {
  const block = config.pinning.onChange === "block";
  return (await store.listToolPins()).map((r) => {
    const risk = recordRisk(r, operatorPin(config, r.server, r.tool));
    return {
      server: r.server,
      tool: r.tool,
      status: r.status,
      tier: risk.tier,
      openWorld: risk.openWorld,
      blocked: block && r.status === "changed",
      pinnedHash: r.pinnedHash,
      currentHash: r.currentHash,
      changedFields: r.status === "changed" ? definitionChanges(r.pinnedDefinition, r.currentDefinition) : [],
      changedAt: r.changedAt,
      acceptedAt: r.acceptedAt,
      acceptedBy: r.acceptedBy,
    };
  });
}

/**
 * Accepts a changed tool's current definition as its pin, only if it still has `expectedHash`
 * (the definition the operator reviewed): a definition changed again meanwhile is refused
 * (`hash_mismatch`). Recorded when accepted. Running gateways learn it through the change feed.
 */
export async function acceptToolChange(
  store: Store,
  request: { server: string; tool: string; expectedHash: string; by: string },
  audit: AdminAudit,
): Promise<ToolAcceptOutcome> {
  const [outcome] = await store.acceptToolPins(
    [{ server: request.server, tool: request.tool, expectedHash: request.expectedHash }],
    { at: new Date(), by: request.by },
  );
  if (outcome === undefined) throw new Error("acceptToolPins returned no outcome");
  if (outcome.outcome === "accepted")
    await audit({
      kind: "tool.accepted",
      server: outcome.server,
      tool: outcome.tool,
      previousHash: outcome.previousHash,
      pinnedHash: outcome.record?.pinnedHash ?? null,
    });
  return outcome;
}
