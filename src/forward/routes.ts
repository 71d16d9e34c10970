/**
 * The configured servers (`servers:`), each as the upstream that forwards to it and the
 * access its endpoint `/mcp/<name>` asks for. Every secret an upstream needs (HTTP headers,
 * a child's environment) is resolved here, at startup, so a missing one stops startup.
 */
import type { Logger } from "pino";
import { resolveSecretValues } from "../config/derived.js";
import type { Config } from "../config/schema.js";
import type { UpstreamHealth } from "../telemetry/upstreamHealth.js";
import { VERSION } from "../version.js";
import { HttpUpstream } from "./http.js";
import type { SessionBindings } from "./sessions.js";
import { StdioUpstream } from "./stdio/bridge.js";
import type { Upstream } from "./upstream.js";
import type { UpstreamTls } from "./upstreamTls.js";

export interface ServerRoute {
  upstream: Upstream;
  anonymous: boolean;
  /** OAuth scopes every request needs, and per-tool additions. */
  scopes: readonly string[];
  toolScopes: Readonly<Record<string, readonly string[]>>;
}

export function serverRoutes(
  config: Config,
  sessions: SessionBindings,
  log: Logger,
  /** Where every upstream reports whether it answers (../telemetry/upstreamHealth.ts). */
  health: UpstreamHealth,
  /** The mutual TLS of the HTTP servers configured with `tls:` (SPIFFE), by server name. */
  tls: ReadonlyMap<string, UpstreamTls> = new Map(),
): Map<string, ServerRoute> {
  const routes = new Map<string, ServerRoute>();
  for (const [name, server] of Object.entries(config.servers)) {
    const upstream =
      server.transport === "http"
        ? new HttpUpstream(
            name,
            server,
            resolveSecretValues(server.headers, `servers.${name}.headers`),
            sessions,
            health,
            tls.get(name) ?? null,
          )
        : new StdioUpstream(
            name,
            server,
            resolveSecretValues(server.env, `servers.${name}.env`),
            sessions,
            log,
            VERSION,
            health,
          );
    routes.set(name, {
      upstream,
      anonymous: server.anonymous,
      scopes: server.oauth.scopes,
      toolScopes: server.oauth.tools,
    });
  }
  return routes;
}

/** Closes every upstream (stdio children stopped, HTTP connections released). */
export async function closeRoutes(routes: ReadonlyMap<string, ServerRoute>): Promise<void> {
  await Promise.all([...routes.values()].map((r) => r.upstream.close()));
}
