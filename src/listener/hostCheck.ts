/**
 * DNS-rebinding protection (MCP basic/transports, Streamable HTTP "Security Warning"):
 * a browser tricked into resolving an attacker's name to the gateway still sends the
 * attacker's Host and Origin, so both must name this gateway. Built once at startup.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Config } from "../config/schema.js";

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
