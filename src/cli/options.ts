/**
 * The options every command takes to find the gateway's store (`--config`, `--data-dir`,
 * `--store` and their PORTCULLIS_* variables), the store opened for one command and closed
 * after it, and one way to print (`--json`: one JSON value; otherwise the human form).
 */
import { type Command, Option } from "commander";
import { ConfigError, type ConfigOverrides, type LoadedConfig, loadConfig } from "../config/load.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";

export interface CommonOpts {
  config?: string;
  dataDir?: string;
  store?: string;
  env?: string;
  json?: boolean;
}

export function withStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-c, --config <file>", "config file (portcullis.yaml)").env("PORTCULLIS_CONFIG"))
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
  return {
    config: opts.config,
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
