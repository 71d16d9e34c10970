/**
 * What every command module of the CLI gets from ./main.ts: the options that find the store
 * (`--config`, `--data-dir`, `--store` and their PORTCULLIS_* variables), the store opened for
 * one command and closed after it, and one way to print (`--json`: one JSON value; otherwise
 * the human form).
 */
import type { Command } from "commander";
import type { LoadedConfig } from "../config/load.js";
import type { Store } from "../store/types.js";

export interface CliDeps {
  withStoreOptions(cmd: Command): Command;
  withStore<T>(opts: object, fn: (store: Store, loaded: LoadedConfig) => Promise<T>): Promise<T>;
  print(json: boolean | undefined, value: unknown, human: () => string): void;
}
