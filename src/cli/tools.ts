/**
 * `portcullis tools list|show|accept`: the tool definitions the gateway has pinned
 * (src/authz/toolCatalogue.ts). A server that changes a tool's description, schema or
 * annotations after it was pinned gets the tool flagged `changed` (and refused, with
 * `pinning.onChange: block`) until an operator reviews the difference (`tools show`) and
 * accepts it (`tools accept`). An acceptance reaches running gateways through the store's
 * change feed.
 */
import { userInfo } from "node:os";
import type { Command } from "commander";
import { operatorPin } from "../authz/policy/caseInput.js";
import { recordRisk } from "../authz/toolCatalogue.js";
import { definitionChanges, PINNED_FIELDS } from "../authz/toolDefinition.js";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { canonicalJson } from "../core/canonicalJson.js";
import type { ToolAcceptOutcome, ToolDefinition, ToolPinRecord } from "../store/types.js";
import { managementRecord, recordManagement } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

/** Bad operator input; the message names the argument. Exits 2 like every usage error. */
export class ToolInputError extends ConfigError {
  override name = "ToolInputError";
}

const HASH = /^[0-9a-f]{64}$/;

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

/** One tool as `list` and `show` print it. */
function describe(r: ToolPinRecord, config: Config): Record<string, unknown> {
  const risk = recordRisk(r, operatorPin(config, r.server, r.tool));
  return {
    server: r.server,
    tool: r.tool,
    status: r.status,
    tier: risk.tier,
    openWorld: risk.openWorld,
    tierSource: risk.source,
    pinnedHash: r.pinnedHash,
    currentHash: r.currentHash,
    firstSeenAt: iso(r.firstSeenAt),
    changedAt: iso(r.changedAt),
    acceptedAt: iso(r.acceptedAt),
    acceptedBy: r.acceptedBy,
  };
}

/** Longest common subsequence table walk: the edit script turning `a` into `b`. */
function editScript<T>(a: readonly T[], b: readonly T[]): { op: " " | "-" | "+"; item: T }[] {
  const n = a.length;
  const m = b.length;
  // Too large for the quadratic table: everything removed, then everything added.
  if (n * m > 4_000_000) {
    return [
      ...a.map((item) => ({ op: "-" as const, item })),
      ...b.map((item) => ({ op: "+" as const, item })),
    ];
  }
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const below = lcs[i + 1] as Uint32Array;
    for (let j = m - 1; j >= 0; j--) {
      row[j] =
        a[i] === b[j] ? (below[j + 1] as number) + 1 : Math.max(below[j] as number, row[j + 1] as number);
    }
  }
  const out: { op: " " | "-" | "+"; item: T }[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: " ", item: a[i] as T });
      i++;
      j++;
    } else if ((lcs[i + 1]?.[j] as number) >= (lcs[i]?.[j + 1] as number)) {
      out.push({ op: "-", item: a[i++] as T });
    } else {
      out.push({ op: "+", item: b[j++] as T });
    }
  }
  while (i < n) out.push({ op: "-", item: a[i++] as T });
  while (j < m) out.push({ op: "+", item: b[j++] as T });
  return out;
}

/** A word diff in `git diff --word-diff` notation: [-removed-]{+added+}. */
export function wordDiff(before: string, after: string): string {
  const split = (s: string) => s.split(/(\s+)/).filter((t) => t !== "");
  let out = "";
  let run: " " | "-" | "+" = " ";
  for (const { op, item } of editScript(split(before), split(after))) {
    if (op !== run) {
      if (run === "-") out += "-]";
      if (run === "+") out += "+}";
      if (op === "-") out += "[-";
      if (op === "+") out += "{+";
      run = op;
    }
    out += item;
  }
  if (run === "-") out += "-]";
  if (run === "+") out += "+}";
  return out;
}

/** A unified-style line diff (every line, prefixed with ' ', '-' or '+'). */
export function lineDiff(before: string, after: string): string[] {
  return editScript(before.split("\n"), after.split("\n")).map(({ op, item }) => `${op} ${item}`);
}

/** Pretty JSON with sorted keys, so the diff shows what changed and not how it was ordered. */
function pretty(value: unknown): string {
  return value === undefined ? "(absent)" : JSON.stringify(JSON.parse(canonicalJson(value)), null, 2);
}

/** The readable difference between the pinned and the current definition, field by field. */
export function definitionDiff(pinned: ToolDefinition, current: ToolDefinition): string[] {
  const lines: string[] = [];
  for (const field of PINNED_FIELDS) {
    const a = pinned[field];
    const b = current[field];
    if (canonicalJson(a ?? null) === canonicalJson(b ?? null) && (a === undefined) === (b === undefined))
      continue;
    lines.push(`${field}:`);
    if (typeof a === "string" && typeof b === "string") {
      lines.push(
        ...wordDiff(a, b)
          .split("\n")
          .map((l) => `  ${l}`),
      );
    } else {
      lines.push(...lineDiff(pretty(a), pretty(b)).map((l) => `  ${l}`));
    }
    lines.push("");
  }
  return lines;
}

function notRecorded(server: string, tool: string): ToolInputError {
  return new ToolInputError(
    `<tool> '${tool}': no tool of that name is recorded for server '${server}' (see portcullis tools list --server ${server})`,
  );
}

function operatorName(given: string | undefined): string | null {
  if (given !== undefined) return given;
  try {
    return userInfo().username || null;
  } catch {
    return process.env.USER ?? null;
  }
}

function acceptView(o: ToolAcceptOutcome, before: ToolPinRecord | undefined): Record<string, unknown> {
  return {
    server: o.server,
    tool: o.tool,
    outcome: o.outcome,
    previousHash: o.previousHash,
    pinnedHash: o.record?.pinnedHash ?? null,
    fields: before ? definitionChanges(before.pinnedDefinition, before.currentDefinition) : [],
  };
}

export function registerToolCommands(program: Command, deps: CliDeps): void {
  const tools = program
    .command("tools")
    .description("pinned tool definitions: review and accept tools whose definition changed");

  deps
    .withStoreOptions(tools.command("list"))
    .description("list the tools the gateway has seen, with their pin status and risk tier")
    .option("--server <name>", "only this server's tools")
    .option("--changed", "only tools whose definition changed since it was pinned")
    .option("--json", "print a JSON array")
    .action(async (opts: { server?: string; changed?: boolean; json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const records = await store.listToolPins({
          ...(opts.server !== undefined ? { server: opts.server } : {}),
          ...(opts.changed ? { status: "changed" as const } : {}),
        });
        if (
          opts.server !== undefined &&
          records.length === 0 &&
          !Object.hasOwn(config.servers, opts.server) &&
          (await store.listToolPins({ server: opts.server })).length === 0
        ) {
          throw new ToolInputError(
            `--server '${opts.server}': no server of that name is configured or has recorded tools`,
          );
        }
        const list = records.map((r) => describe(r, config));
        deps.print(opts.json, list, () =>
          list.length === 0
            ? opts.changed
              ? "(no changed tools)"
              : "(no tools seen yet)"
            : table(
                list.map((t) => ({ ...t, pinnedHash: String(t.pinnedHash).slice(0, 12) })),
                ["server", "tool", "status", "tier", "openWorld", "pinnedHash", "changedAt"],
              ),
        );
      });
    });

  deps
    .withStoreOptions(tools.command("show"))
    .description("show a tool's pinned and current definitions and what changed between them")
    .argument("<server>", "server name")
    .argument("<tool>", "tool name")
    .option("--json", "print one JSON object")
    .action(async (server: string, tool: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const r = await store.getToolPin(server, tool);
        if (r === undefined) throw notRecorded(server, tool);
        const view: Record<string, unknown> = {
          ...describe(r, config),
          changedFields: definitionChanges(r.pinnedDefinition, r.currentDefinition),
          pinned: r.pinnedDefinition,
          current: r.currentDefinition,
        };
        deps.print(opts.json, view, () => {
          const head = [
            `server       ${r.server}`,
            `tool         ${r.tool}`,
            `status       ${r.status}`,
            `tier         ${String(view.tier)}${view.openWorld ? ", open world" : ""} (${String(view.tierSource)})`,
            `first seen   ${r.firstSeenAt.toISOString()}`,
            `pinned       ${r.pinnedHash}${r.acceptedAt ? ` (accepted ${r.acceptedAt.toISOString()}${r.acceptedBy ? ` by ${r.acceptedBy}` : ""})` : " (first sighting)"}`,
          ];
          if (r.status === "pinned") {
            return [
              ...head,
              "",
              "description:",
              `  ${String(r.pinnedDefinition.description ?? "(none)")}`,
            ].join("\n");
          }
          const diff = definitionDiff(r.pinnedDefinition, r.currentDefinition);
          return [
            ...head,
            `current      ${r.currentHash} (changed ${iso(r.changedAt) ?? "-"})`,
            "",
            ...(diff.length > 0
              ? ["pinned → current:", "", ...diff]
              : ["the server serves the pinned definition again after changing it"]),
            `accept it with: portcullis tools accept ${r.server} ${r.tool} --hash ${r.currentHash}`,
          ].join("\n");
        });
      });
    });

  deps
    .withStoreOptions(tools.command("accept"))
    .description("accept a changed tool's current definition as its pin (unblocks it)")
    .argument("[server]", "server name")
    .argument("[tool]", "tool name")
    .option("--all", "accept every changed tool (of <server>, when given)")
    .option("--hash <sha256>", "accept only if the current definition still has this hash (from tools show)")
    .option("--by <name>", "who accepts, for the record (default: the OS user)")
    .option("--json", "print one JSON object")
    .action(
      async (
        server: string | undefined,
        tool: string | undefined,
        opts: { all?: boolean; hash?: string; by?: string; json?: boolean },
      ) => {
        if (opts.all && tool !== undefined) {
          throw new ToolInputError(`<tool> '${tool}': give either one tool or --all, not both`);
        }
        if (!opts.all && server === undefined) {
          throw new ToolInputError("<server>: required (or --all to accept every changed tool)");
        }
        if (!opts.all && tool === undefined) {
          throw new ToolInputError(`<tool>: required (or --all to accept every changed tool of ${server})`);
        }
        if (opts.hash !== undefined && opts.all) {
          throw new ToolInputError("--hash: applies to one tool, not to --all");
        }
        if (opts.hash !== undefined && !HASH.test(opts.hash)) {
          throw new ToolInputError(
            `--hash '${opts.hash}': must be the 64 hex digits shown by portcullis tools show`,
          );
        }
        if (opts.by !== undefined && opts.by.trim() === "") {
          throw new ToolInputError("--by: must not be empty");
        }
        const by = operatorName(opts.by);
        await deps.withStore(opts, async (store, { config }) => {
          let targets: ToolPinRecord[];
          if (opts.all) {
            targets = await store.listToolPins({
              status: "changed",
              ...(server !== undefined ? { server } : {}),
            });
          } else {
            const r = await store.getToolPin(server as string, tool as string);
            if (r === undefined) throw notRecorded(server as string, tool as string);
            targets = [r];
          }
          const at = new Date();
          const outcomes = await store.acceptToolPins(
            // Accept exactly what was read (and shown): a definition changed meanwhile is refused.
            targets.map((r) => ({
              server: r.server,
              tool: r.tool,
              expectedHash: opts.hash ?? r.currentHash,
            })),
            { at, by },
          );
          const mismatch = outcomes.find((o) => o.outcome === "hash_mismatch");
          if (mismatch !== undefined && !opts.all) {
            const now = mismatch.record?.currentHash ?? "?";
            const review = `review it with portcullis tools show ${mismatch.server} ${mismatch.tool}`;
            throw new ToolInputError(
              opts.hash !== undefined
                ? `--hash '${opts.hash}': '${mismatch.tool}' now has definition ${now}, not this one; ${review}`
                : `<tool> '${mismatch.tool}': the server changed it again while accepting (now ${now}); ${review}`,
            );
          }
          const results = outcomes.map((o, i) => acceptView(o, targets[i]));
          await recordManagement(
            store,
            config,
            results
              .filter((r) => r.outcome === "accepted")
              .map((r) =>
                managementRecord(config, "tool.accepted", `tool definition accepted by ${by}`, {
                  server: String(r.server),
                  tool: String(r.tool),
                  detail: { previousHash: r.previousHash, pinnedHash: r.pinnedHash, fields: r.fields },
                }),
              ),
          );
          deps.print(opts.json, { acceptedAt: at.toISOString(), acceptedBy: by, results }, () => {
            if (results.length === 0) return "no changed tools to accept";
            return results
              .map((r) => {
                const name = `${String(r.server)}/${String(r.tool)}`;
                switch (r.outcome) {
                  case "accepted":
                    return `accepted ${name}: pin ${String(r.previousHash).slice(0, 12)} → ${String(r.pinnedHash).slice(0, 12)} (${(r.fields as string[]).join(", ") || "no field changed"})`;
                  case "already_pinned":
                    return `${name}: already pinned, nothing to accept`;
                  case "hash_mismatch":
                    return `${name}: changed again since it was read; not accepted (review it with tools show)`;
                  default:
                    return `${name}: no longer recorded`;
                }
              })
              .join("\n");
          });
        });
      },
    );
}
