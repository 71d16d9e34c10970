/**
 * The start-up message: endpoints, the first-run key and admin password (once) and
 * ready-to-paste client configuration. Every command it prints works verbatim from any
 * directory: it names this gateway's store (`storeArgs`) and the CLI as it was invoked
 * (`invocation`), and its URLs carry the bound port.
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { delimiter, dirname, join, resolve, sep } from "node:path";

export interface BannerServer {
  name: string;
  transport: "stdio" | "http";
}

export interface BannerFacts {
  baseUrl: string;
  servers: BannerServer[];
  environment: string;
  /** The first-run API key, shown once; null when none was created now. */
  key: string | null;
  /** The first admin of the built-in authorization server, created now; shown once. */
  user?: { username: string; password: string } | null;
  /** How to run the CLI from any directory: `portcullis`, `npx portcullis`, … ({@link cliInvocation}). */
  invocation: string;
  /** Arguments that make another command use this gateway's store, already shell-quoted. */
  storeArgs: string;
  /** Arguments `keys create` needs beyond the store's, e.g. `--env prod`, already shell-quoted. */
  keyArgs?: string;
  /** Which configuration and store this gateway uses (one line). */
  using: string;
  /** Lines to show before the client configuration (warnings). */
  notes?: string[];
}

/** The variable a printed command reads the key from when no key is shown. */
export const KEY_VARIABLE = "PORTCULLIS_KEY";

/** A word safe to paste into a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The project npm ran in, if `npx portcullis` works there: this package's clone, or a project depending on it. */
function npmProject(packageJson: string | undefined): string | null {
  if (!packageJson) return null;
  const dir = dirname(resolve(packageJson));
  if (isFile(join(dir, "node_modules", ".bin", "portcullis"))) return dir;
  try {
    return (JSON.parse(readFileSync(packageJson, "utf8")) as { name?: unknown }).name === "portcullis"
      ? dir
      : null;
  } catch {
    return null;
  }
}

/**
 * How a user runs this CLI again, from any directory, decided by how it was invoked:
 * - from npx's download cache (`npx portcullis` of the published package): `npx portcullis`;
 * - by npm in a project (`npm start` in a clone, `npx portcullis` where it is a dependency):
 *   `npx --prefix <that project> portcullis` (plain `npx portcullis` works only inside it);
 * - when the first `portcullis` on the PATH is this very program (a global install): `portcullis`;
 * - otherwise `node <this script>`.
 */
export function cliInvocation(
  env: NodeJS.ProcessEnv = process.env,
  script: string | undefined = process.argv[1],
): string {
  if (script === undefined) return "portcullis";
  const invoked = resolve(script);
  if (invoked.includes(`${sep}_npx${sep}`)) return "npx portcullis";
  const project = env.npm_lifecycle_event !== undefined ? npmProject(env.npm_package_json) : null;
  if (project !== null) return `npx --prefix ${shellQuote(project)} portcullis`;
  let self: string;
  try {
    self = realpathSync(invoked);
  } catch {
    self = invoked;
  }
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "portcullis");
    if (!isFile(candidate)) continue;
    // The shell runs the first one it finds: only if that is this program is `portcullis` right.
    if (realpathSync(candidate) === self) return "portcullis";
    break;
  }
  return `node ${shellQuote(invoked)}`;
}

/** A 2026-07-28 request: no handshake. The gateway serves it for any stdio server (it bridges). */
function modernCurl(url: string, auth: string): string[] {
  return [
    `  curl -s ${url} -H ${auth} -H 'Content-Type: application/json' \\`,
    `    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list' \\`,
    `    -d '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}'`,
  ];
}

/**
 * The initialize handshake: what every HTTP server that speaks a 2025 revision answers,
 * whether or not it also speaks 2026-07-28 (a 2025-only upstream answers a 2026-07-28
 * request with -32022 through the gateway, which cannot bridge HTTP upstreams).
 */
function handshakeCurl(url: string, auth: string): string[] {
  return [
    `  curl -s ${url} -H ${auth} -H 'Content-Type: application/json' \\`,
    `    -H 'Accept: application/json, text/event-stream' \\`,
    `    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'`,
  ];
}

export function welcomeBanner(facts: BannerFacts): string {
  const { baseUrl, servers, environment, key, invocation, storeArgs } = facts;
  const user = facts.user ?? null;
  const first = servers[0] ?? { name: "demo", transport: "stdio" as const };
  const url = `${baseUrl}/mcp/${first.name}`;
  const cli = (args: string) => [invocation, args, storeArgs].filter(Boolean).join(" ");
  const shownKey = key ?? "<your-api-key>";
  const lines = [
    "",
    `Portcullis is running (environment: ${environment})`,
    ...servers.map((s) => `  MCP endpoint  ${baseUrl}/mcp/${s.name}`),
    `  health        ${baseUrl}/healthz   metrics ${baseUrl}/metrics`,
    `  using         ${facts.using}`,
    "",
  ];
  if (key) {
    lines.push(
      "A development API key was created for this data directory. It is shown ONCE; copy it now:",
      "",
      `  ${key}`,
      "",
    );
  }
  lines.push(
    "Manage keys (these commands work from any directory):",
    `  ${cli(["keys create --name my-agent", facts.keyArgs].filter(Boolean).join(" "))}`,
    `  ${cli("keys list")}`,
  );
  if (user) {
    lines.push(
      "",
      "OAuth is on: MCP clients that support it need only the endpoint URL; sign in (and to the console) as",
      `  username: ${user.username}   password: ${user.password}   (shown once; ${cli("users list")})`,
    );
  }
  for (const note of facts.notes ?? []) lines.push("", note);
  // With no key shown, the commands read it from a shell variable (set it to a key you created).
  const auth = key ? `'Authorization: Bearer ${key}'` : `"Authorization: Bearer $${KEY_VARIABLE}"`;
  const cursor = { mcpServers: { [first.name]: { url, headers: { Authorization: `Bearer ${shownKey}` } } } };
  const vscode = {
    inputs: [
      { type: "promptString", id: "portcullis-key", description: "Portcullis API key", password: true },
    ],
    servers: {
      [first.name]: { type: "http", url, headers: { Authorization: `Bearer $\{input:portcullis-key}` } },
    },
  };
  // mcp-remote: no space inside an argument (it breaks on Windows); the space lives in the env value.
  const desktop = {
    mcpServers: {
      [first.name]: {
        command: "npx",
        args: ["-y", "mcp-remote", url, "--header", `Authorization:$\{AUTH_HEADER}`],
        env: { AUTH_HEADER: `Bearer ${shownKey}` },
      },
    },
  };
  lines.push(
    "",
    key ? "Try it:" : `Try it (with ${KEY_VARIABLE} set to a key, e.g. export ${KEY_VARIABLE}=pcl_…):`,
    ...(first.transport === "stdio" ? modernCurl(url, auth) : handshakeCurl(url, auth)),
    "",
    "Claude Code:",
    `  claude mcp add --transport http ${first.name} ${url} --header ${key ? `"Authorization: Bearer ${key}"` : auth}`,
    "",
    "Cursor (~/.cursor/mcp.json):",
    indent(JSON.stringify(cursor, null, 2)),
    "",
    "VS Code (.vscode/mcp.json; prompts for the key instead of storing it):",
    indent(JSON.stringify(vscode, null, 2)),
    "",
    "Claude Desktop (claude_desktop_config.json, via mcp-remote):",
    indent(JSON.stringify(desktop, null, 2)),
    "",
  );
  return `${lines.join("\n")}\n`;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
