/**
 * The commented portcullis.yaml that `portcullis init` writes: every option it sets is
 * explained where it stands, and the text is checked against the config schema before it is
 * written (a file init writes always loads). Reference: docs/configuration.md.
 */
import { parse } from "yaml";
import { parseConfig } from "../config/load.js";
import type { ImportedServer, ImportedValue } from "./clientConfigImport.js";

export interface InitConfigInput {
  environment: string;
  host: string;
  port: number;
  dataDir: string;
  /** `sqlite` or a postgres:// URL (without its password). */
  store: string;
  adminGroup: string;
  servers: ImportedServer[];
}

/** A YAML scalar: JSON's double-quoted string is valid YAML and escapes everything. */
const q = (s: string) => JSON.stringify(s);

function value(v: ImportedValue): string {
  return typeof v === "string" ? q(v) : `{ env: ${q(v.env)} }`;
}

function serverBlock(s: ImportedServer): string[] {
  const lines = [`  ${s.name}:`, `    # From ${s.from}. Clients reach it at /mcp/${s.name}.`];
  if (s.transport === "stdio") {
    lines.push(
      "    # stdio: the gateway starts this command itself and speaks MCP over its stdin/stdout.",
      "    transport: stdio",
      `    command: ${q(s.command)}`,
      `    args: [${s.args.map(q).join(", ")}]`,
    );
    if (s.cwd !== undefined)
      lines.push("    # cwd: the working directory of the command.", `    cwd: ${q(s.cwd)}`);
    const env = Object.entries(s.env);
    if (env.length > 0) {
      lines.push(
        "    # env: variables the command gets. Plain values are written as they were; secrets are",
        "    # read from the gateway's own environment at start ({ env: NAME }), never stored here.",
        "    env:",
        ...env.map(
          ([k, v]) =>
            `      ${q(k)}: ${value(v)}${typeof v === "string" ? "" : `  # secret: set ${v.env} before portcullis start`}`,
        ),
      );
    }
    lines.push(
      "    # isolation: per-caller starts one process per caller, so one caller's state and",
      "    # credentials never reach another; shared runs one process for everyone.",
      "    isolation: per-caller",
      "    # timeoutMs: how long one call may take before the client gets a 504.",
      "    timeoutMs: 60000",
    );
  } else {
    lines.push(
      "    # http: a remote MCP server speaking Streamable HTTP. The client's own credential is never",
      "    # forwarded; the gateway sends the headers below instead.",
      "    transport: http",
      `    url: ${q(s.url)}`,
    );
    const headers = Object.entries(s.headers);
    if (headers.length > 0) {
      lines.push(
        "    # headers: sent to the server on every request; values always come from the environment",
        "    # (the whole header value, e.g. 'Bearer …').",
        "    headers:",
        ...headers.map(
          ([h, v]) => `      ${q(h)}: ${value(v)}  # secret: set ${v.env} before portcullis start`,
        ),
      );
    }
    lines.push(
      "    # timeoutMs: how long one call may take before the client gets a 504.",
      "    timeoutMs: 60000",
    );
  }
  return lines;
}

/** The file's text. Throws ConfigError (naming the field) if it would not load. */
export function renderInitConfig(input: InitConfigInput, now = new Date()): string {
  const lines = [
    `# portcullis.yaml, written by \`portcullis init\` on ${now.toISOString().slice(0, 10)}.`,
    "# Every option is described in docs/configuration.md; check this setup with `portcullis doctor`.",
    "",
    "# environment: the deployment this gateway serves (dev, test, prod). API keys are minted for",
    "# one environment and refused by the others; prod refuses anonymous servers.",
    `environment: ${q(input.environment)}`,
    "",
    "# listen: where MCP clients connect. 127.0.0.1 keeps the gateway on this machine; to serve",
    "# others, listen on 0.0.0.0 behind TLS and set publicUrl to the address clients use.",
    "listen:",
    `  host: ${q(input.host)}`,
    `  port: ${input.port}`,
    "",
    "# dataDir: the embedded store and generated secrets (the server secret, mode 0600).",
    "# Relative to this file.",
    `dataDir: ${q(input.dataDir)}`,
    "",
    "# store: `sqlite` (a file in dataDir) or a postgres:// URL that every replica shares.",
    ...(input.store === "sqlite"
      ? []
      : ["# The password is not written here: set PGPASSWORD (read by the PostgreSQL client)."]),
    `store: ${q(input.store)}`,
    "",
    "# oauth: the built-in OAuth 2.1 authorization server. MCP clients that support OAuth need only",
    "# the endpoint URL; people sign in with local accounts (portcullis users add). API keys",
    "# (portcullis keys create) work alongside it.",
    "oauth:",
    "  mode: builtin",
    "",
    "# console: the admin web console at /console; only members of adminGroups may sign in.",
    "console:",
    `  adminGroups: [${q(input.adminGroup)}]`,
    "",
    "# policy: without policy.paths, the built-in default pack (policies/default) decides every",
    "# request; copy it, edit it and list its directory here to change the rules.",
    "",
    "# servers: the MCP servers behind the gateway, each served at /mcp/<name>.",
    ...(input.servers.length === 0 ? ["servers: {}"] : ["servers:", ...input.servers.flatMap(serverBlock)]),
    "",
  ];
  const text = lines.join("\n");
  parseConfig(parse(text), "the configuration portcullis init would write");
  return text;
}
