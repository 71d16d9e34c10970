/** Prometheus metrics (served at /metrics). Label values are bounded sets. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  requests: Counter<"server" | "method" | "outcome">;
  duration: Histogram<"server" | "method">;
  auditPending: Gauge;
  upstreamProcesses: Gauge<"server">;
  /** Policy reloads refused because a file did not compile (the previous policy stays). */
  policyReloadErrors: Counter;
  /** 1 while the files on disk compile, 0 while the gateway runs an older valid policy. */
  policyValid: Gauge;
  decisions: Counter<"effect">;
  /** 1 while the store's change feed is connected (the gateway can judge credentials), else 0. */
  storeReachable: Gauge;
  /** Store connections that failed outside a query (server restart, reset, refused reconnect). */
  storeConnectionErrors: Counter;
  /** Audit batches that could not be written (their group-committed records are retried). */
  auditWriteErrors: Counter;
}

const KNOWN_METHODS = new Set([
  "initialize",
  "ping",
  "server/discover",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/read",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "subscriptions/listen",
  "GET",
  "DELETE",
]);

/** Keeps label cardinality bounded whatever clients send. */
export function methodLabel(method: string | null): string {
  if (method === null) return "none";
  if (KNOWN_METHODS.has(method)) return method;
  return method.startsWith("notifications/") ? "notification" : "other";
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: "portcullis_requests_total",
      help: "MCP requests by server, method and outcome (allowed, denied, error status class)",
      labelNames: ["server", "method", "outcome"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "portcullis_request_duration_seconds",
      help: "Time from request to response headers, by server and method",
      labelNames: ["server", "method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    auditPending: new Gauge({
      name: "portcullis_audit_pending_records",
      help: "Audit records accepted but not yet committed",
      registers: [registry],
    }),
    upstreamProcesses: new Gauge({
      name: "portcullis_upstream_processes",
      help: "Running stdio upstream child processes",
      labelNames: ["server"],
      registers: [registry],
    }),
    policyReloadErrors: new Counter({
      name: "portcullis_policy_reload_errors_total",
      help: "Policy changes refused because a file did not compile; the last valid policy stays in force",
      registers: [registry],
    }),
    policyValid: new Gauge({
      name: "portcullis_policy_files_valid",
      help: "1 when the policy files on disk compile, 0 when the gateway still runs an older valid policy",
      registers: [registry],
    }),
    decisions: new Counter({
      name: "portcullis_policy_decisions_total",
      help: "Policy decisions by effect",
      labelNames: ["effect"],
      registers: [registry],
    }),
    storeReachable: new Gauge({
      name: "portcullis_store_reachable",
      help: "1 while the store is reachable and its change feed connected; 0 while requests are refused 503",
      registers: [registry],
    }),
    storeConnectionErrors: new Counter({
      name: "portcullis_store_connection_errors_total",
      help: "Store connections lost or refused outside a query (database restart, network fault)",
      registers: [registry],
    }),
    auditWriteErrors: new Counter({
      name: "portcullis_audit_write_errors_total",
      help: "Audit batches whose write failed; group-committed records are retried, durable ones refused",
      registers: [registry],
    }),
  };
}
