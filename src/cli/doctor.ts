/**
 * `portcullis doctor`: checks a setup and says what to fix, one line per check (ok, warn or
 * fail): the config and where it was found, the store and its migrations, every upstream,
 * OAuth discovery as a client sees it, the signing keys of each enterprise IdP, the clock,
 * secret file permissions, the Node version.
 * Exit 0 when nothing failed, 1 otherwise.
 */
import type { Command } from "commander";
import { ConfigError, type LoadedConfig, loadConfig } from "../config/load.js";
import { type Check, checkEnvironment, checkNode, checkSecrets, checkStore } from "./doctorChecks.js";
import { checkClock, checkEnterpriseIdps, checkOAuthDiscovery, checkUpstream } from "./doctorProbes.js";
import { type CommonOpts, overrides, print, withStoreOptions } from "./options.js";
import { table } from "./table.js";

interface DoctorOptions extends CommonOpts {
  probe?: boolean;
  timeout?: string;
}

export async function runDoctor(opts: DoctorOptions): Promise<Check[]> {
  if (!(Number(opts.timeout ?? "10") > 0))
    throw new ConfigError(`--timeout '${opts.timeout}': a number of seconds greater than 0`);
  const checks: Check[] = [checkNode()];
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(overrides(opts));
  } catch (err) {
    checks.unshift({
      check: "config",
      status: "fail",
      detail: (err as Error).message,
      fix: "fix the field named above (docs/configuration.md)",
    });
    return checks;
  }
  const timeoutMs = Number(opts.timeout ?? "10") * 1000;
  const { config } = loaded;
  checks.unshift({
    check: "config",
    status: "ok",
    detail: loaded.source === null ? "no config file: the embedded default" : `loaded from ${loaded.source}`,
  });
  checks.push(checkEnvironment(config));
  const store = await checkStore(loaded);
  checks.push(...store.checks, ...checkSecrets(config));
  const upstreams = await Promise.all(
    Object.entries(config.servers).map(([name, server]) =>
      checkUpstream(name, server, { probe: opts.probe !== false, timeoutMs }),
    ),
  );
  checks.push(...upstreams, ...(await checkOAuthDiscovery(config, timeoutMs)));
  checks.push(...(await checkEnterpriseIdps(config, timeoutMs)));
  checks.push(await checkClock(config, store.clock, timeoutMs));
  return checks;
}

export function registerDoctorCommand(program: Command): void {
  withStoreOptions(program.command("doctor"))
    .description(
      "check the config, store, upstreams, OAuth discovery, clock, secret files and Node; print what to fix",
    )
    .option("--no-probe", "do not start stdio servers or send MCP initialize/tools/list to upstreams")
    .option("--timeout <seconds>", "longest wait for each upstream or URL", "10")
    .option("--json", "print {ok, summary, checks: [{check, status, detail, fix?}]}")
    .addHelpText("after", "\nExit code: 0 when no check failed (warnings allowed), 1 otherwise.\n")
    .action(async (opts: DoctorOptions) => {
      const checks = await runDoctor(opts);
      const summary = { ok: 0, warn: 0, fail: 0 };
      for (const c of checks) summary[c.status]++;
      print(opts.json, { ok: summary.fail === 0, summary, checks }, () =>
        [
          table(
            checks.map((c) => ({ status: c.status, check: c.check, detail: c.detail, fix: c.fix ?? "" })),
            ["status", "check", "detail", "fix"],
          ),
          "",
          `${summary.ok} ok, ${summary.warn} warn, ${summary.fail} fail`,
        ].join("\n"),
      );
      if (summary.fail > 0) process.exitCode = 1;
    });
}
