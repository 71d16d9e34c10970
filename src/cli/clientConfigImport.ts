/**
 * Reads the MCP servers an existing client already runs, so `portcullis init` can put them
 * behind the gateway: Claude Desktop (`claude_desktop_config.json`) and Cursor (`mcp.json`) keep
 * them under `mcpServers`; VS Code (`.vscode/mcp.json`, or `mcp.servers` in its settings) under
 * `servers`, with `type: stdio | http | sse`. Local (stdio) servers become stdio servers, remote
 * ones HTTP upstreams. A value that looks like a secret is never carried over: it becomes a
 * reference to an environment variable the operator sets (`{ env: NAME }`), and the import says
 * which.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError } from "../config/load.js";

/** A value in a server's env (or an HTTP header): kept as written, or read from a variable. */
export type ImportedValue = string | { env: string };

export type ImportedServer =
  | {
      name: string;
      transport: "stdio";
      command: string;
      args: string[];
      env: Record<string, ImportedValue>;
      cwd?: string;
      from: string;
    }
  | { name: string; transport: "http"; url: string; headers: Record<string, { env: string }>; from: string };

/** An environment variable the operator must set before `portcullis start`. */
export interface RequiredVariable {
  variable: string;
  /** Where the config uses it, e.g. `servers.github.env.GITHUB_TOKEN`. */
  field: string;
}

export interface ImportResult {
  servers: ImportedServer[];
  variables: RequiredVariable[];
  /** What was skipped or changed, one sentence each. */
  notes: string[];
}

/** Names whose value is a credential (as the audit redaction reads them, plus the usual env names). */
const SECRET_NAME =
  /pass(word|phrase|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|authori[sz]ation|credential|cookie|session|auth|dsn|signing[-_]?key/i;

/** Values that are credentials whatever their name: well-known token prefixes, bearer values, JWTs, URLs with a password. */
const SECRET_VALUE = [
  /^(sk|pk|rk)[-_](live|test|proj|ant)?[-_]?[A-Za-z0-9_-]{8,}/,
  /^(ghp|gho|ghu|ghs|ghr|github_pat|glpat|xox[abprs]|AKIA|ASIA|AIza|ya29\.|pcl_)[A-Za-z0-9_.-]{8,}/,
  /^(Bearer|Basic|Token)\s+\S{8,}$/i,
  /^eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\./,
  /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i,
];

/** A long random-looking string (letters and digits mixed, no spaces, not a path or URL). */
function highEntropy(value: string): boolean {
  if (value.length < 24 || /\s/.test(value) || /^[./~]|:\/\//.test(value)) return false;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/].filter((r) => r.test(value)).length;
  return classes >= 3 || (classes >= 2 && value.length >= 32 && /^[A-Za-z0-9+/=_-]+$/.test(value));
}

/** Whether the value of `name` must not be written into the config in clear. */
export function looksSecret(name: string, value: string): boolean {
  if (value === "") return false;
  return SECRET_NAME.test(name) || SECRET_VALUE.some((r) => r.test(value)) || highEntropy(value);
}

/** JSON with comments and trailing commas (VS Code's `mcp.json` and settings are JSONC). */
export function parseJsonc(text: string): unknown {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 1;
    } else out += c;
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, "$1"));
}

/** The well-known places a client keeps its MCP servers, for `--import auto` (existing files only). */
export function wellKnownClientConfigs(dir: string, home = homedir()): string[] {
  const appData = process.env.APPDATA ?? join(home, "AppData", "Roaming");
  const candidates = [
    join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"),
    join(home, ".config", "Claude", "claude_desktop_config.json"),
    join(appData, "Claude", "claude_desktop_config.json"),
    join(home, ".cursor", "mcp.json"),
    join(dir, ".cursor", "mcp.json"),
    join(dir, ".vscode", "mcp.json"),
  ];
  return [...new Set(candidates.map((p) => resolve(p)))].filter((p) => existsSync(p));
}

/** `GitHub Tools` → `github-tools`: the form of a server name in /mcp/<name>. */
export function serverName(raw: string): string {
  const name = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
  return name === "" ? "server" : name;
}

/** `${env:NAME}` (VS Code, Cursor) names a variable; the reference is kept as such. */
const ENV_REFERENCE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** Reads the servers of several client config files, one name space for all of them. */
export class ClientConfigImport {
  private readonly servers: ImportedServer[] = [];
  private readonly variables: RequiredVariable[] = [];
  private readonly notes: string[] = [];
  private readonly taken = new Set<string>();
  private readonly variableNames = new Set<string>();

  constructor(reserved: Iterable<string> = []) {
    for (const n of reserved) this.taken.add(n);
  }

  /** Adds the servers of one file; a file that is not a client config is a ConfigError. */
  addFile(file: string): number {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`--import ${file}: cannot read it: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseJsonc(text);
    } catch (err) {
      throw new ConfigError(`--import ${file}: not JSON: ${(err as Error).message}`);
    }
    const obj = (parsed ?? {}) as Record<string, unknown>;
    const nested = (obj.mcp as Record<string, unknown> | undefined)?.servers;
    const entries = obj.mcpServers ?? obj.servers ?? nested;
    if (entries === null || typeof entries !== "object" || Array.isArray(entries)) {
      throw new ConfigError(
        `--import ${file}: no MCP servers in it (expected "mcpServers" as Claude Desktop and Cursor write it, or "servers" as VS Code does)`,
      );
    }
    const before = this.servers.length;
    for (const [raw, entry] of Object.entries(entries as Record<string, unknown>)) {
      this.addServer(raw, (entry ?? {}) as Record<string, unknown>, file);
    }
    return this.servers.length - before;
  }

  result(): ImportResult {
    return { servers: [...this.servers], variables: [...this.variables], notes: [...this.notes] };
  }

  private uniqueName(raw: string, file: string): string {
    const base = serverName(raw);
    let name = base;
    for (let i = 2; this.taken.has(name); i++) name = `${base.slice(0, 60)}-${i}`;
    if (name !== raw) this.notes.push(`server '${raw}' from ${file} is named '${name}' (/mcp/${name})`);
    this.taken.add(name);
    return name;
  }

  /** A variable name for a secret: the original one unless another server already uses it. */
  private variable(preferred: string, server: string, field: string): { env: string } {
    let name = preferred.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
    if (!/^[A-Z_]/.test(name)) name = `_${name}`;
    if (this.variableNames.has(name)) name = `${server.toUpperCase().replace(/-/g, "_")}_${name}`;
    for (let i = 2; this.variableNames.has(name); i++) name = `${name}_${i}`;
    this.variableNames.add(name);
    this.variables.push({ variable: name, field });
    return { env: name };
  }

  private addServer(raw: string, entry: Record<string, unknown>, file: string): void {
    const type = typeof entry.type === "string" ? entry.type : undefined;
    if (entry.disabled === true) {
      this.notes.push(`server '${raw}' from ${file} is disabled there: skipped`);
      return;
    }
    if (type === "sse") {
      this.notes.push(
        `server '${raw}' from ${file} uses the legacy SSE transport, which Portcullis does not forward: skipped (add its Streamable HTTP URL by hand)`,
      );
      return;
    }
    if (
      typeof entry.command === "string" &&
      entry.command !== "" &&
      (type === undefined || type === "stdio")
    ) {
      const name = this.uniqueName(raw, file);
      const env: Record<string, ImportedValue> = {};
      for (const [k, v] of Object.entries((entry.env ?? {}) as Record<string, unknown>)) {
        const value = String(v ?? "");
        const ref = ENV_REFERENCE.exec(value)?.[1];
        if (ref !== undefined) env[k] = { env: ref };
        else if (/\$\{input:/.test(value) || looksSecret(k, value))
          env[k] = this.variable(k, name, `servers.${name}.env.${k}`);
        else env[k] = value;
      }
      const args = Array.isArray(entry.args) ? entry.args.map((a) => String(a)) : [];
      const secretArgs = args.filter((a, i) => looksSecret(i > 0 ? (args[i - 1] as string) : "", a));
      if (secretArgs.length > 0)
        this.notes.push(
          `server '${name}': ${secretArgs.length} argument(s) look like secrets and were copied as written; move them to env variables`,
        );
      const server: ImportedServer = {
        name,
        transport: "stdio",
        command: entry.command,
        args,
        env,
        from: file,
      };
      if (typeof entry.cwd === "string") server.cwd = entry.cwd;
      if (entry.envFile !== undefined)
        this.notes.push(`server '${name}': envFile is not imported; add its variables to env by hand`);
      this.servers.push(server);
      return;
    }
    const url =
      typeof entry.url === "string"
        ? entry.url
        : typeof entry.serverUrl === "string"
          ? entry.serverUrl
          : undefined;
    if (url !== undefined && (type === undefined || type === "http" || type === "streamable-http")) {
      if (!/^https?:\/\//.test(url)) {
        this.notes.push(`server '${raw}' from ${file}: URL ${url} is not http(s): skipped`);
        return;
      }
      const name = this.uniqueName(raw, file);
      const headers: Record<string, { env: string }> = {};
      // Header values are always secrets in the gateway's config (they usually carry a credential).
      for (const [h, v] of Object.entries((entry.headers ?? {}) as Record<string, unknown>)) {
        const ref = ENV_REFERENCE.exec(String(v))?.[1];
        headers[h] = ref ? { env: ref } : this.variable(`${name}_${h}`, name, `servers.${name}.headers.${h}`);
      }
      this.servers.push({ name, transport: "http", url, headers, from: file });
      return;
    }
    this.notes.push(`server '${raw}' from ${file}: neither a command nor an http URL: skipped`);
  }
}
