/**
 * `portcullis servers list|status`: the configured upstream servers, and their health as the
 * gateways using the same store last published it (src/telemetry/upstreamHealth.ts): up,
 * down (with the error and, for a stdio server, its last stderr lines, masked) or unknown.
 * The CLI reads the store rather than asking a gateway: it works with any number of replicas,
 * needs no credential for the gateway, and still shows the last report of a stopped one.
 */
import type { Command } from "commander";
import { serverTarget, serverViews } from "../admin/servers.js";
import { loadConfig } from "../config/load.js";
import type { CliDeps } from "./commandDeps.js";
import { type CommonOpts, overrides } from "./options.js";
import { table } from "./table.js";

export function registerServerCommands(program: Command, deps: CliDeps): void {
  const servers = program
    .command("servers")
    .description("the configured upstream MCP servers and their health");

  deps
    .withStoreOptions(servers.command("list"))
    .description("list the configured servers: name, transport, command or URL (reads only the config)")
    .option("--json", "print a JSON array")
    .action(async (opts: CommonOpts) => {
      const { config } = loadConfig(overrides(opts));
      const list = Object.entries(config.servers).map(([name, s]) => ({
        name,
        transport: s.transport,
        target: serverTarget(s),
      }));
      deps.print(opts.json, list, () =>
        table(list, ["name", "transport", "target"], "(no servers configured)"),
      );
    });

  deps
    .withStoreOptions(servers.command("status"))
    .description(
      "show each server's health as the running gateways see it: up, down (with the error and a stdio server's last stderr lines) or unknown",
    )
    .option("--json", "print a JSON array")
    .action(async (opts: CommonOpts) => {
      await deps.withStore(opts, async (store, { config }) => {
        const views = await serverViews(store, config);
        deps.print(opts.json, views, () => {
          if (views.length === 0) return "(no servers configured)";
          const rows = views.map((v) => ({
            ...v,
            since: v.since ?? "-",
            error: v.lastError ?? "-",
            reportedBy: v.reportedBy === null ? "(no gateway has reported)" : v.reportedBy,
          }));
          const out = [table(rows, ["name", "transport", "target", "state", "since", "reportedBy", "error"])];
          for (const v of views) {
            if (v.state !== "down" || v.stderr.length === 0) continue;
            out.push("", `${v.name}: last stderr lines (masked)`, ...v.stderr.map((l) => `  | ${l}`));
          }
          return out.join("\n");
        });
      });
    });
}
