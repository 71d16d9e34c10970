/**
 * The options every command takes to find the gateway's store (`--config`, `--data-dir`,
 * `--store` and their PORTCULLIS_* variables; without `--config` the file is discovered the
 * way `start` discovers it, config/load.ts `discoverConfig`), the store opened for one
 * command and closed after it, and one way to print (`--json`: one JSON value; otherwise the
 * human form).
 *
 * A command never silently works on a store other than the gateway's: which configuration
 * and store it used is said on stderr when it was not named with `--config`; a command that
 * creates something (`create`, `add`) on a SQLite store that does not exist yet says it is
 * creating a new, empty one; any other command refuses, so `keys list` in the wrong
 * directory leaves no store behind (docs/cli.md, "Finding the gateway's store").
 */
import { existsSync } from "node:fs";
import { type Command, Option } from "commander";
import {
  ConfigError,
  type ConfigOverrides,
  describeConfigSource,
  type LoadedConfig,
  loadConfig,
} from "../config/load.js";
import { isPostgresSpec, openStore, storeDisplayName } from "../store/open.js";
import type { Store } from "../store/types.js";

export interface CommonOpts {
  /** A file, or false for `--no-config` (the embedded default, whatever would be discovered). */
  config?: string | false;
  dataDir?: string;
  store?: string;
  env?: string;
  json?: boolean;
}

/** The commands that make something new, and so may create the store they write to. */
const CREATING_COMMANDS = new Set(["create", "add"]);

interface CommandUse {
  /** e.g. `keys list`. */
  name: string;
  creates: boolean;
  configFromEnv: boolean;
}

/** The command each parsed option object belongs to (commander hands the action that object). */
const commandUse = new WeakMap<object, CommandUse>();

export function withStoreOptions(cmd: Command): Command {
  cmd.hook("preAction", (_self, action) => {
    commandUse.set(action.opts(), {
      name: [action.parent?.name(), action.name()].filter(Boolean).join(" "),
      creates: CREATING_COMMANDS.has(action.name()),
      configFromEnv: action.getOptionValueSource("config") === "env",
    });
  });
  return cmd
    .addOption(
      new Option(
        "-c, --config <file>",
        "config file (default: PORTCULLIS_CONFIG, else ./portcullis.yaml, else the embedded default)",
      ).env("PORTCULLIS_CONFIG"),
    )
    .addOption(
      new Option(
        "--no-config",
        "the embedded default configuration, even where a config file would be found",
      ),
    )
    .addOption(
      new Option("-d, --data-dir <dir>", "data directory (embedded store, generated secrets)").env(
        "PORTCULLIS_DATA_DIR",
      ),
    )
    .addOption(
      new Option("--store <spec>", "store: 'sqlite', a SQLite file, or a postgres:// URL").env(
        "PORTCULLIS_STORE",
      ),
    );
}

export function overrides(
  opts: CommonOpts & { port?: string; host?: string; environment?: string },
): ConfigOverrides {
  const port = opts.port === undefined ? undefined : Number(opts.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new ConfigError(`--port '${opts.port}': must be an integer between 0 and 65535`);
  }
  const use = commandUse.get(opts);
  return {
    config: opts.config,
    ...(use?.configFromEnv ? { configFoundBy: "environment" as const } : {}),
    dataDir: opts.dataDir,
    store: opts.store,
    port,
    host: opts.host,
    environment: opts.environment,
  };
}

export async function withStore<T>(
  opts: CommonOpts,
  fn: (store: Store, loaded: LoadedConfig) => Promise<T>,
): Promise<T> {
  const loaded = loadConfig(overrides(opts));
  const use = commandUse.get(opts);
  const where = storeDisplayName(loaded.storeSpec);
  if (loaded.foundBy !== "flag")
    process.stderr.write(
      `portcullis: using ${describeConfigSource({ path: loaded.source, foundBy: loaded.foundBy })}; store ${where}\n`,
    );
  if (!isPostgresSpec(loaded.storeSpec) && !existsSync(loaded.storeSpec)) {
    const hint =
      "If a gateway is running, this is not its store: pass the --config <file> (or --data-dir / --store) it was started with";
    if (use !== undefined && !use.creates)
      throw new ConfigError(
        `no store at ${where}: \`${use.name}\` creates none and has nothing to read. ${hint} (docs/cli.md, "Finding the gateway's store")`,
      );
    process.stderr.write(`portcullis: no store at ${where} yet: this creates a new, empty one. ${hint}.\n`);
  }
  const store = await openStore(loaded.storeSpec);
  try {
    return await fn(store, loaded);
  } finally {
    await store.close();
  }
}

export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}
