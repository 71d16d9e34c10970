/**
 * DNS-rebinding protection (MCP basic/transports, Streamable HTTP "Security Warning"):
 * a browser tricked into resolving an attacker's name to the gateway still sends the
 * attacker's Host and Origin, so both must name this gateway. Built once at startup.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import type { Config } from "../config/schema.js";
import { sendJson } from "../core/reply.js";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]", "::1"];
const LOOPBACK_LISTEN = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

function hostnameOf(hostHeader: string): string {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return "";
  }
}

/** Returns null when any Host is acceptable (wildcard listen without allowedHosts or publicUrl). */
export function allowedHostnames(config: Config): Set<string> | null {
  const names = new Set<string>();
  for (const h of config.listen.allowedHosts ?? []) names.add(h.toLowerCase());
  if (config.publicUrl) names.add(new URL(config.publicUrl).hostname.toLowerCase());
  const listenHost = config.listen.host.toLowerCase();
  if (LOOPBACK_LISTEN.has(listenHost) || names.size > 0) for (const n of LOOPBACK_NAMES) names.add(n);
  if (!LOOPBACK_LISTEN.has(listenHost) && listenHost !== "0.0.0.0" && listenHost !== "::")
    names.add(listenHost);
  if (names.size === 0) return null;
  return names;
}

/**
 * Builds the check once: it returns the reason a request is refused, or null when its Host
 * and Origin name this gateway. Host values already accepted are remembered, so the usual
 * case is one set lookup.
 */
export function hostGuard(config: Config): (headers: IncomingHttpHeaders) => string | null {
  const allowed = allowedHostnames(config);
  const accepted = new Set<string>();
  return (headers) => {
    const host = headers.host;
    if (host !== undefined && accepted.has(host) && headers.origin === undefined) return null;
    const problem = hostProblem(headers, allowed);
    if (problem === null && host !== undefined && accepted.size < 256) accepted.add(host);
    return problem;
  };
}

function hostProblem(headers: IncomingHttpHeaders, allowed: Set<string> | null): string | null {
  if (allowed === null) return null;
  const host = headers.host;
  if (!host || !allowed.has(hostnameOf(host)))
    return `Host '${host ?? ""}' is not an allowed host (DNS rebinding protection)`;
  const origin = headers.origin;
  if (origin !== undefined && origin !== "null") {
    let name = "";
    try {
      name = new URL(origin).hostname.toLowerCase();
    } catch {
      // fall through: unparsable origin is refused
    }
    if (!allowed.has(name)) return `Origin '${origin}' is not an allowed origin (DNS rebinding protection)`;
  }
  return null;
}

/** Paths that load balancers, orchestrators and scrapers call by the pod's or host's address. */
const PROBE_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/status"]);

function isIpLiteralHost(hostHeader: string): boolean {
  const name = hostnameOf(hostHeader);
  return isIP(name.startsWith("[") ? name.slice(1, -1) : name) !== 0;
}

/**
 * The Host check for every route outside `/mcp/*` (which checks Host and Origin itself, and
 * audits the refusal): the authorization server, its metadata, the console, review links.
 * A DNS-rebinding page always sends its own *name* as Host, so:
 * - every route needs an allowed Host name. Origin is not checked here: browser-based MCP
 *   clients call `/token`, `/reg` and the metadata cross-origin (CORS), and the console checks
 *   the Origin of its own form posts;
 * - the probes (`/healthz`, `/readyz`, `/metrics`, `/status`) also accept an IP-literal Host, which is what
 *   Kubernetes probes and Prometheus scrapes send (`Host: 10.1.2.3:8080`) and which a rebinding
 *   page cannot send. They build no URL and carry no user data.
 * Returns the reason a request is refused, or null. Built once at startup.
 */
export function routeHostGuard(config: Config): (req: IncomingMessage) => string | null {
  const allowed = allowedHostnames(config);
  if (allowed === null) return () => null;
  const check = hostGuard(config);
  return (req) => {
    const url = req.url ?? "/";
    if (url.startsWith("/mcp/")) return null;
    const problem = check({ host: req.headers.host });
    if (problem === null) return null;
    const host = req.headers.host;
    if (host !== undefined && PROBE_PATHS.has(url.split("?", 1)[0] as string) && isIpLiteralHost(host))
      return null;
    return problem;
  };
}

/** 403 for a request naming another host (RFC 9110 §7.2: Host identifies the origin server). */
export function refuseForeignHost(res: ServerResponse, problem: string): void {
  sendJson(
    res,
    403,
    { error: "invalid_request", error_description: problem },
    { "cache-control": "no-store" },
  );
}
