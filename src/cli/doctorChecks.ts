/**
 * The checks of `portcullis doctor`, each a small function returning lines of ok / warn / fail
 * with what to do about it. Nothing here changes anything: the store is read without being
 * migrated, upstreams are asked (initialize, tools/list) but never called.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { publicBaseUrl, resolveSecretValues } from "../config/derived.js";
import type { LoadedConfig } from "../config/load.js";
import type { Config, HttpServerConfig, StdioServerConfig } from "../config/schema.js";
import { migrationStatus } from "../store/migrationStatus.js";
import { isPostgresSpec } from "../store/open.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  /** Stable name of what was checked, e.g. `store`, `upstream:github`. */
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

const ok = (check: string, detail: string): Check => ({ check, status: "ok", detail });
const warn = (check: string, detail: string, fix: string): Check => ({ check, status: "warn", detail, fix });
const fail = (check: string, detail: string, fix: string): Check => ({ check, status: "fail", detail, fix });

/** The error's message, with its cause's (fetch says only "fetch failed"). */
function message(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return cause ? `${err.message}: ${typeof code === "string" ? code : cause.message}` : err.message;
}

/** Node 20 reaches end of life in April 2026 (nodejs.org/en/about/previous-releases). */
export function checkNode(version = process.versions.node): Check {
  const major = Number(version.split(".")[0]);
  if (major < 20)
    return fail("node", `Node ${version}`, "Portcullis needs Node 20 or later: install Node 22 or 24");
  if (major === 20)
    return warn("node", `Node ${version} (end of life April 2026)`, "upgrade to Node 22 or 24 (LTS)");
  return ok("node", `Node ${version}`);
}

/** What the schema cannot say alone: a gateway reachable from elsewhere, a plain-http public URL. */
export function checkEnvironment(config: Config): Check {
  const loopback = ["127.0.0.1", "::1", "localhost"].includes(config.listen.host);
  if (config.environment !== "dev" && config.publicUrl?.startsWith("http:"))
    return warn(
      "environment",
      `${config.environment}: publicUrl ${config.publicUrl} is plain http`,
      "serve the gateway behind TLS and set publicUrl to its https address",
    );
  if (!loopback && config.publicUrl === undefined)
    return warn(
      "environment",
      `${config.environment}: listening on ${config.listen.host} without publicUrl`,
      "set publicUrl to the address clients use (OAuth metadata and Host checks are built from it)",
    );
  return ok("environment", `${config.environment}, listening on ${config.listen.host}:${config.listen.port}`);
}

function redactUrl(spec: string): string {
  if (!isPostgresSpec(spec)) return spec;
  const u = new URL(spec);
  if (u.password) u.password = "***";
  return u.toString();
}

/** Reachable, and its schema neither behind (pending migrations) nor ahead (a newer build's). */
export async function checkStore(
  loaded: LoadedConfig,
): Promise<{ checks: Check[]; clock?: { store: Date; local: Date } }> {
  const where = redactUrl(loaded.storeSpec);
  try {
    const status = await migrationStatus(loaded.storeSpec);
    if (!status.exists)
      return {
        checks: [
          warn(
            "store",
            `no store yet at ${where}`,
            "run `portcullis init` or `portcullis start` once: it creates the store",
          ),
        ],
      };
    const checks = [ok("store", `reachable: ${where}`)];
    if (status.unknown.length > 0)
      checks.push(
        fail(
          "store.migrations",
          `the store has migrations this build does not know: ${status.unknown.join(", ")}`,
          "run the Portcullis version that migrated this store (or newer)",
        ),
      );
    else if (status.pending.length > 0)
      checks.push(
        warn(
          "store.migrations",
          `${status.pending.length} migration(s) pending: ${status.pending.join(", ")}`,
          "`portcullis start` applies them (back the store up first)",
        ),
      );
    else checks.push(ok("store.migrations", "schema current"));
    return status.clock ? { checks, clock: status.clock } : { checks };
  } catch (err) {
    return {
      checks: [
        fail(
          "store",
          `unreachable: ${where}: ${message(err)}`,
          "check the store setting, that the database is up and the credentials",
        ),
      ],
    };
  }
}

type SecretLocation = { field: string; file?: string; env?: string };

function asReference(value: unknown, field: string): SecretLocation[] {
  if (value === null || typeof value !== "object") return [];
  const ref = value as { file?: unknown; env?: unknown };
  if (Object.keys(ref).length !== 1) return [];
  if (typeof ref.file === "string") return [{ field, file: ref.file }];
  if (typeof ref.env === "string") return [{ field, env: ref.env }];
  return [];
}

/**
 * Every `{ file }` and `{ env }` secret reference in the config, with the field that holds it.
 * A server's `env` and `headers` are maps of names chosen by the operator: only their values
 * can be references (a variable named `file` is not one).
 */
export function secretReferences(value: unknown, path = ""): SecretLocation[] {
  if (value === null || typeof value !== "object") return [];
  if (/^servers\.[^.]+\.(env|headers)$/.test(path))
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      asReference(v, `${path}.${k}`),
    );
  const ref = asReference(value, path);
  if (ref.length > 0) return ref;
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    secretReferences(v, path === "" ? k : `${path}.${k}`),
  );
}

function fileMode(check: string, file: string, field: string): Check {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    return fail(
      check,
      `${field}: cannot read ${file}: ${message(err)}`,
      "create the file or fix the path in the config",
    );
  }
  const octal = (mode & 0o777).toString(8).padStart(3, "0");
  if ((mode & 0o077) !== 0)
    return warn(
      check,
      `${field}: ${file} is readable by ${mode & 0o007 ? "every user" : "its group"} (mode ${octal})`,
      `chmod 600 ${file}`,
    );
  return ok(check, `${field}: ${file} (mode ${octal})`);
}

/** The server secret and every secret file the config names: present and readable by the owner only; variables set. */
export function checkSecrets(config: Config): Check[] {
  const checks: Check[] = [];
  if (config.serverSecret === undefined) {
    const file = join(config.dataDir, "server-secret");
    checks.push(
      existsSync(file)
        ? fileMode("secret:server", file, "server secret")
        : warn(
            "secret:server",
            `no server secret yet at ${file}`,
            "`portcullis init` or the first `portcullis start` creates it",
          ),
    );
  }
  for (const ref of secretReferences(config)) {
    if (ref.file !== undefined) checks.push(fileMode(`secret:${ref.field}`, resolve(ref.file), ref.field));
    else if (ref.env !== undefined)
      checks.push(
        process.env[ref.env]
          ? ok(`secret:${ref.field}`, `${ref.field}: ${ref.env} is set`)
          : warn(
              `secret:${ref.field}`,
              `${ref.field}: environment variable ${ref.env} is not set here`,
              `set ${ref.env} in the gateway's environment (it refuses to start without it)`,
            ),
      );
  }
  return checks;
}

/** Where a command resolves as spawn() would find it, or null. */
export function findCommand(command: string, path: string | undefined, cwd: string): string | null {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes("/") || command.includes("\\")) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    return executable(file) ? file : null;
  }
  const exts = process.platform === "win32" ? (process.env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (path ?? "").split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const file = join(dir, command + ext);
      if (executable(file)) return file;
    }
  }
  return null;
}

/** Runs `fn` for at most `ms`; the timer never keeps the process alive. */
async function bounded<T>(ms: number, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new Error(`${what}: no answer within ${ms / 1000} s`));
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([fn(ctl.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** MCP initialize and tools/list through a real SDK client: the tool count. */
async function probe(
  server: StdioServerConfig | HttpServerConfig,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<number> {
  const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
  const client = new Client({ name: "portcullis-doctor", version: "1" });
  let transport: import("@modelcontextprotocol/sdk/shared/transport.js").Transport;
  if (server.transport === "stdio") {
    const { StdioClientTransport, getDefaultEnvironment } = await import(
      "@modelcontextprotocol/sdk/client/stdio.js"
    );
    transport = new StdioClientTransport({
      command: server.command,
      args: server.args,
      env: { ...getDefaultEnvironment(), ...env },
      ...(server.cwd ? { cwd: server.cwd } : {}),
      stderr: "ignore",
    });
  } else {
    const { StreamableHTTPClientTransport } = await import(
      "@modelcontextprotocol/sdk/client/streamableHttp.js"
    );
    transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: env } });
  }
  try {
    return await bounded(timeoutMs, "MCP initialize", async () => {
      await client.connect(transport);
      return (await client.listTools()).tools.length;
    });
  } finally {
    await client.close().catch(() => {});
  }
}

/** Each upstream: its command found (stdio) or URL answering (http), and with `probe` a real initialize + tools/list. */
export async function checkUpstream(
  name: string,
  server: StdioServerConfig | HttpServerConfig,
  opts: { probe: boolean; timeoutMs: number },
): Promise<Check> {
  const check = `upstream:${name}`;
  let found = "";
  if (server.transport === "stdio") {
    const path = typeof server.env.PATH === "string" ? server.env.PATH : process.env.PATH;
    const file = findCommand(server.command, path, server.cwd ?? process.cwd());
    if (file === null)
      return fail(
        check,
        `stdio command '${server.command}' not found${server.command.includes("/") ? "" : " on PATH"} or not executable`,
        `install it, or set servers.${name}.command to its absolute path`,
      );
    found = `stdio: ${file}`;
  }
  let env: Record<string, string>;
  try {
    env = resolveSecretValues(server.transport === "stdio" ? server.env : server.headers, `servers.${name}`);
  } catch (err) {
    // The secret check reports the missing variable or file; this one says what it could not do.
    return ok(
      check,
      `${server.transport === "stdio" ? found : `http: ${server.url}`}; not probed (${message(err)})`,
    );
  }
  if (!opts.probe) {
    if (server.transport === "stdio") return ok(check, found);
    try {
      const res = await bounded(opts.timeoutMs, server.url, (signal) =>
        fetch(server.url, { method: "HEAD", signal }),
      );
      return ok(check, `http: ${server.url} answers (${res.status})`);
    } catch (err) {
      return fail(check, `http: ${server.url}: ${message(err)}`, "check the URL and that the server is up");
    }
  }
  try {
    const tools = await probe(server, env, opts.timeoutMs);
    return ok(check, `${server.transport}: MCP initialize and tools/list answered (${tools} tools)`);
  } catch (err) {
    return fail(
      check,
      `${server.transport}: MCP initialize failed: ${message(err)}`,
      server.transport === "stdio"
        ? `run '${[server.command, ...server.args].join(" ")}' by hand to see its errors`
        : "check the URL, its headers and that it speaks Streamable HTTP",
    );
  }
}

async function getJson(
  url: string,
  timeoutMs: number,
): Promise<{ status: number; body: Record<string, unknown> | null; date: string | null }> {
  return bounded(timeoutMs, url, async (signal) => {
    const res = await fetch(url, { signal, headers: { accept: "application/json" } });
    const text = await res.text();
    let body: Record<string, unknown> | null = null;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {}
    return { status: res.status, body, date: res.headers.get("date") };
  });
}

/** RFC 8414 §3.1: the well-known path is inserted between the host and the issuer's path. */
function metadataUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
  return [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}/.well-known/openid-configuration${path}`,
    `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`,
  ];
}

/**
 * OAuth discovery as an MCP client sees it (RFC 9728 protected resource metadata for each
 * server, then RFC 8414 authorization server metadata), from the gateway running at the
 * configured address; issuer and resource must match the public base URL.
 */
export async function checkOAuthDiscovery(config: Config, timeoutMs: number): Promise<Check[]> {
  if (config.oauth === undefined) return [ok("oauth", "off: clients use API keys")];
  const base = publicBaseUrl(config, config.listen.port);
  try {
    await getJson(`${base}/healthz`, timeoutMs);
  } catch (err) {
    return [
      warn(
        "oauth",
        `no gateway answers at ${base} (${message(err)}): discovery not checked`,
        `start it (portcullis start) and run doctor again, or set publicUrl if clients use another address`,
      ),
    ];
  }
  const checks: Check[] = [];
  for (const name of Object.keys(config.servers)) {
    const check = `oauth:${name}`;
    const resource = `${base}/mcp/${name}`;
    const prm = `${base}/.well-known/oauth-protected-resource/mcp/${name}`;
    try {
      const meta = await getJson(prm, timeoutMs);
      if (meta.status !== 200 || meta.body === null) {
        checks.push(
          fail(
            check,
            `${prm} answered ${meta.status}`,
            "the running gateway is not this config's: restart it with this config",
          ),
        );
        continue;
      }
      if (meta.body.resource !== resource) {
        checks.push(
          fail(
            check,
            `resource is ${String(meta.body.resource)}, clients expect ${resource}`,
            "set publicUrl to the address clients use and restart the gateway",
          ),
        );
        continue;
      }
      const issuer = (meta.body.authorization_servers as unknown[] | undefined)?.[0];
      if (typeof issuer !== "string") {
        checks.push(
          fail(check, `${prm} names no authorization server`, "check the oauth section of the config"),
        );
        continue;
      }
      let as: Record<string, unknown> | null = null;
      for (const url of metadataUrls(issuer)) {
        const r = await getJson(url, timeoutMs).catch(() => null);
        if (r?.status === 200 && r.body) {
          as = r.body;
          break;
        }
      }
      if (as === null) {
        checks.push(
          fail(
            check,
            `no authorization server metadata for ${issuer}`,
            "check that the issuer is reachable from clients",
          ),
        );
        continue;
      }
      if (as.issuer !== issuer) {
        checks.push(
          fail(
            check,
            `metadata issuer ${String(as.issuer)} differs from ${issuer}`,
            "clients refuse mismatched issuers (RFC 8414 §3.3): fix the issuer URL",
          ),
        );
        continue;
      }
      if (config.oauth.mode === "builtin" && issuer.replace(/\/$/, "") !== base) {
        checks.push(
          fail(
            check,
            `issuer ${issuer} is not the public base URL ${base}`,
            "set publicUrl to the address clients use and restart the gateway",
          ),
        );
        continue;
      }
      checks.push(ok(check, `${prm} → ${issuer}`));
    } catch (err) {
      checks.push(
        fail(
          check,
          `${prm}: ${message(err)}`,
          "check that the gateway at the configured address is this one",
        ),
      );
    }
  }
  return checks;
}

const SKEW_WARN_S = 30;

/** This machine's clock against the store's (PostgreSQL) or an identity provider's / upstream's Date header. */
export async function checkClock(
  config: Config,
  storeClock: { store: Date; local: Date } | undefined,
  timeoutMs: number,
): Promise<Check> {
  let reference: string | undefined;
  let skew: number | undefined;
  if (storeClock) {
    reference = "the PostgreSQL store";
    skew = (storeClock.local.getTime() - storeClock.store.getTime()) / 1000;
  } else {
    const idp =
      config.oauth?.mode === "external"
        ? config.oauth.issuer
        : config.oauth?.mode === "builtin"
          ? config.oauth.login?.upstream?.issuer
          : undefined;
    const http = Object.values(config.servers).find((s): s is HttpServerConfig => s.transport === "http");
    const url = idp ?? http?.url;
    if (url !== undefined) {
      try {
        const before = Date.now();
        const res = await bounded(timeoutMs, url, (signal) => fetch(url, { method: "HEAD", signal }));
        const date = res.headers.get("date");
        if (date !== null) {
          reference = idp ? `the identity provider ${url}` : `the upstream ${url}`;
          // Date has whole seconds: the middle of the exchange, rounded down to its second.
          skew = ((before + Date.now()) / 2 - Date.parse(date) - 500) / 1000;
        }
      } catch {}
    }
  }
  if (skew === undefined || reference === undefined)
    return ok(
      "clock",
      "no reference clock (SQLite store, no identity provider or HTTP upstream answered with a Date)",
    );
  const s = Math.abs(skew);
  if (s > SKEW_WARN_S)
    return warn(
      "clock",
      `${s.toFixed(0)} s ${skew > 0 ? "ahead of" : "behind"} ${reference}`,
      "synchronise the clock (NTP): token lifetimes and expiries depend on it",
    );
  return ok("clock", `within ${Math.max(1, Math.ceil(s))} s of ${reference}`);
}
