/**
 * The checks of `portcullis doctor` that ask over the network or start something: every
 * upstream (its command found as spawn() would find it, then MCP initialize and tools/list
 * through the SDK client), OAuth discovery as a client sees it, and the clock against the store
 * or an HTTP peer. Each is bounded in time; upstreams are asked, never called.
 */
import { publicBaseUrl, resolveSecretValues } from "../config/derived.js";
import type { Config, HttpServerConfig, StdioServerConfig } from "../config/schema.js";
import { findCommand } from "../forward/upstreamChecks.js";
import { fetchIdpKeys } from "../oauth/enterpriseIdps.js";
import { type Check, fail, message, ok, warn } from "./doctorChecks.js";

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

/** Each trusted enterprise IdP (oauth.enterprise): its signing keys found and fetched as the gateway does. */
export async function checkEnterpriseIdps(config: Config, timeoutMs: number): Promise<Check[]> {
  const enterprise = config.oauth?.mode === "builtin" ? config.oauth.enterprise : undefined;
  return Promise.all(
    (enterprise?.idps ?? []).map(async (idp) => {
      const check = `enterprise:${idp.issuer}`;
      try {
        const found = await fetchIdpKeys(idp, config.environment, timeoutMs);
        if (found.keys === 0) {
          return fail(
            check,
            `${found.jwksUri} holds no signing key`,
            "check oauth.enterprise.idps[].jwksUri",
          );
        }
        return ok(check, `${found.keys} signing keys at ${found.jwksUri}`);
      } catch (err) {
        return fail(
          check,
          message(err),
          "check oauth.enterprise.idps[].issuer (or set jwksUri): ID-JAGs from this IdP are refused until its keys can be fetched over https",
        );
      }
    }),
  );
}
