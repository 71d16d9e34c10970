/**
 * What the gateway derives from a validated config at startup, before anything is built:
 * secret references resolved (a missing one stops startup), whether the admin console runs,
 * and the public base URL once the port is bound.
 */
import { ConfigError, readSecret } from "./load.js";
import type { Config } from "./schema.js";

/** Literal values kept, `{ env }` / `{ file }` references read; `field` names them in errors. */
export function resolveSecretValues(
  values: Record<string, string | { env: string } | { file: string }>,
  field: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values))
    out[k] = typeof v === "string" ? v : readSecret(v, `${field}.${k}`);
  return out;
}

/** The admin console signs users in through the built-in authorization server (docs/console.md). */
export function consoleEnabled(config: Config): boolean {
  const enabled = config.console.enabled ?? config.oauth?.mode === "builtin";
  if (enabled && config.oauth?.mode !== "builtin")
    throw new ConfigError(
      "console.enabled: the console needs oauth.mode: builtin (or set console.enabled: false)",
    );
  return enabled;
}

/** `publicUrl`, or the address the gateway listens on (`port`: the bound one). */
export function publicBaseUrl(config: Config, port: number): string {
  const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
  return (
    config.publicUrl?.replace(/\/$/, "") ??
    `${config.listen.tls ? "https" : "http"}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`
  );
}
