/**
 * Finds the config file (one order for `start` and every other command: see
 * {@link discoverConfig}), loads it (or the embedded default), applies command-line overrides
 * and validates once. A bad config fails here, at startup, with a message naming the field.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { Config, type SecretRef } from "./schema.js";
import { spiffeConfigProblems } from "./spiffeChecks.js";

/** Misuse or bad configuration: reported at startup, never at request time. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** How the config file was found, in the order {@link discoverConfig} tries. */
export type ConfigFoundBy = "flag" | "environment" | "working-directory" | "embedded-default";

export interface DiscoveredConfig {
  /** Absolute path of the config file, or null for the embedded default. */
  path: string | null;
  foundBy: ConfigFoundBy;
}

/** The names looked for in the working directory, in this order. */
export const CONFIG_FILE_NAMES = ["portcullis.yaml", "portcullis.yml"] as const;

/**
 * Which config file a command uses, the same way for `start` and every management command:
 * 1. `--config <file>` (`flag`; `--no-config` names the embedded default);
 * 2. the `PORTCULLIS_CONFIG` environment variable;
 * 3. `portcullis.yaml` (or `portcullis.yml`) in the working directory;
 * 4. none: the embedded default, whose store is in the data directory (`--data-dir`,
 *    `PORTCULLIS_DATA_DIR`, default `./.portcullis`).
 * Both `portcullis.yaml` and `portcullis.yml` in one directory is ambiguous: a ConfigError.
 */
export function discoverConfig(
  opts: { flag?: string | undefined; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): DiscoveredConfig {
  const cwd = opts.cwd ?? process.cwd();
  if (opts.flag) return { path: resolve(cwd, opts.flag), foundBy: "flag" };
  const fromEnv = (opts.env ?? process.env).PORTCULLIS_CONFIG;
  if (fromEnv) return { path: resolve(cwd, fromEnv), foundBy: "environment" };
  const present = CONFIG_FILE_NAMES.map((name) => join(cwd, name)).filter((file) => existsSync(file));
  if (present.length > 1)
    throw new ConfigError(
      `both ${present.join(" and ")} exist: remove one, or name the one to use with --config`,
    );
  const [found] = present;
  if (found !== undefined) return { path: found, foundBy: "working-directory" };
  return { path: null, foundBy: "embedded-default" };
}

/** One line saying which configuration was used and how it was found (for stderr). */
export function describeConfigSource(found: DiscoveredConfig): string {
  switch (found.foundBy) {
    case "flag":
      return found.path === null
        ? "the embedded default configuration (--no-config)"
        : `config ${found.path}`;
    case "environment":
      return `config ${found.path} (from PORTCULLIS_CONFIG)`;
    case "working-directory":
      return `config ${found.path} (found in the working directory)`;
    case "embedded-default":
      return "the embedded default configuration (no --config, PORTCULLIS_CONFIG or ./portcullis.yaml)";
  }
}

export interface ConfigOverrides {
  /** A config file named explicitly, false for none (`--no-config`); absent: {@link discoverConfig}. */
  config?: string | false | undefined;
  /** How `config` was given (default `flag`): PORTCULLIS_CONFIG arrives through the same option. */
  configFoundBy?: "flag" | "environment" | undefined;
  port?: number | undefined;
  host?: string | undefined;
  dataDir?: string | undefined;
  store?: string | undefined;
  environment?: string | undefined;
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or null for the embedded default. */
  source: string | null;
  /** How that file (or the embedded default) was chosen. */
  foundBy: ConfigFoundBy;
  /** Absolute path of the SQLite file or the postgres:// URL. */
  storeSpec: string;
}

/** Path of the bundled demo MCP server, next to this compiled module. */
export function demoServerPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "demo", "server.js");
}

function embeddedDefault(): unknown {
  return {
    oauth: { mode: "builtin" },
    servers: {
      demo: { transport: "stdio", command: process.execPath, args: [demoServerPath()] },
    },
  };
}

function formatIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.join(".") : "(top level)";
    let hint = issue.message;
    if (issue.code === "unrecognized_keys") {
      hint = `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(", ")}: remove them or check the spelling (see docs/configuration.md)`;
    }
    return `  - ${path}: ${hint}`;
  });
  return `invalid configuration in ${source}:\n${lines.join("\n")}`;
}

export function parseConfig(raw: unknown, source: string): Config {
  const parsed = Config.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, source));
  const config = parsed.data;
  for (const [name, server] of Object.entries(config.servers)) {
    if (server.anonymous && config.environment === "prod") {
      throw new ConfigError(
        `invalid configuration in ${source}:\n  - servers.${name}.anonymous: anonymous access is refused in the prod environment; remove it and give callers API keys`,
      );
    }
  }
  const upstream = config.oauth?.mode === "builtin" ? config.oauth.login?.upstream : undefined;
  if (upstream !== undefined) {
    const field = "oauth.login.upstream";
    if (upstream.allowInsecureHttp && config.environment !== "dev") {
      throw new ConfigError(
        `invalid configuration in ${source}:\n  - ${field}.allowInsecureHttp: allowed only in the dev environment (this is ${config.environment}); remove it and use an https issuer`,
      );
    }
    if (new URL(upstream.issuer).protocol !== "https:" && !upstream.allowInsecureHttp) {
      throw new ConfigError(
        `invalid configuration in ${source}:\n  - ${field}.issuer: must be an https URL (a plain-http issuer needs allowInsecureHttp: true, dev environment only)`,
      );
    }
  }
  const enterprise = config.oauth?.mode === "builtin" ? config.oauth.enterprise : undefined;
  for (const [i, idp] of (enterprise?.idps ?? []).entries()) {
    for (const field of ["issuer", "jwksUri"] as const) {
      const value = idp[field];
      if (value === undefined || new URL(value).protocol === "https:") continue;
      if (config.environment !== "dev" || new URL(value).protocol !== "http:") {
        throw new ConfigError(
          `invalid configuration in ${source}:\n  - oauth.enterprise.idps.${i}.${field}: must be an https URL (plain http only in the dev environment), got ${value}`,
        );
      }
    }
  }
  const spiffeProblems = spiffeConfigProblems(config);
  if (spiffeProblems.length > 0)
    throw new ConfigError(
      `invalid configuration in ${source}:\n${spiffeProblems.map((p) => `  - ${p}`).join("\n")}`,
    );
  if (config.keys.defaultTtlDays > config.keys.maxTtlDays) {
    throw new ConfigError(
      `invalid configuration in ${source}:\n  - keys.defaultTtlDays: ${config.keys.defaultTtlDays} exceeds keys.maxTtlDays (${config.keys.maxTtlDays}); lower it or raise the maximum`,
    );
  }
  return config;
}

export function loadConfig(overrides: ConfigOverrides = {}): LoadedConfig {
  let raw: unknown;
  const found: DiscoveredConfig =
    overrides.config === false
      ? { path: null, foundBy: "flag" }
      : overrides.config
        ? { path: resolve(overrides.config), foundBy: overrides.configFoundBy ?? "flag" }
        : discoverConfig();
  const source = found.path;
  if (source !== null) {
    let text: string;
    try {
      text = readFileSync(source, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read config file ${source}: ${(err as Error).message}`);
    }
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      throw new ConfigError(`invalid YAML in ${source}: ${e?.message ?? "parse error"}`);
    }
    raw = doc.toJS();
  } else {
    raw = embeddedDefault();
  }
  const obj: Record<string, unknown> = raw && typeof raw === "object" ? { ...(raw as object) } : {};
  if (overrides.environment !== undefined) obj.environment = overrides.environment;
  // Paths given on the command line are relative to the working directory, not to the file.
  if (overrides.dataDir !== undefined) obj.dataDir = resolve(overrides.dataDir);
  if (overrides.store !== undefined)
    obj.store =
      overrides.store === "sqlite" || /^postgres(ql)?:\/\//i.test(overrides.store)
        ? overrides.store
        : resolve(overrides.store);
  if (overrides.port !== undefined || overrides.host !== undefined) {
    const listen = { ...((obj.listen as object | undefined) ?? {}) } as Record<string, unknown>;
    if (overrides.port !== undefined) listen.port = overrides.port;
    if (overrides.host !== undefined) listen.host = overrides.host;
    obj.listen = listen;
  }
  const config = parseConfig(obj, source ?? "the embedded default configuration");
  // Relative paths in a config file are relative to the file, not the working directory.
  const base = source ? dirname(source) : process.cwd();
  if (!isAbsolute(config.dataDir)) config.dataDir = resolve(base, config.dataDir);
  let storeSpec = config.store;
  if (storeSpec === "sqlite") storeSpec = join(config.dataDir, "portcullis.db");
  else if (!/^postgres(ql)?:\/\//i.test(storeSpec) && !isAbsolute(storeSpec))
    storeSpec = resolve(base, storeSpec);
  return { config, source, foundBy: found.foundBy, storeSpec };
}

/** Reads a secret reference at startup; a missing variable or file is a startup error. */
export function readSecret(ref: SecretRef, field: string): string {
  if ("env" in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === "") {
      throw new ConfigError(`${field}: environment variable ${ref.env} is not set`);
    }
    return value;
  }
  try {
    return readFileSync(ref.file, "utf8").trim();
  } catch (err) {
    throw new ConfigError(`${field}: cannot read secret file ${ref.file}: ${(err as Error).message}`);
  }
}
