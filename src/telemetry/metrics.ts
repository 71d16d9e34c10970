/**
 * Prometheus metrics (served at /metrics). Every label value comes from a bounded set fixed
 * at startup, never from what a client sent: a server label is a configured server or
 * `unknown`, a method a known MCP method or a class, an outcome a known word or status.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { LIMIT_NAMES } from "../core/errors.js";

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
  /** Requests refused 503 before any work because the audit backlog was full. */
  auditBacklogRefusals: Counter;
  /** Requests refused because a per-caller cap was reached (limit: see listener/limits.ts). */
  limitRefusals: Counter<"limit">;
  callsInFlight: Gauge;
  openStreams: Gauge;
  /** Faults of an upstream the client saw as 502/503/504 (status). */
  upstreamErrors: Counter<"server" | "status">;
  /** The server label for a name from the URL: a configured server, else `unknown`. */
  serverLabel(name: string): string;
}

/** Outcomes written by the listener and the review gate besides HTTP statuses. */
const KNOWN_OUTCOMES = new Set(["allowed", "review_pending", "review_abandoned"]);

/** Statuses kept as such; any other status an upstream sends is counted by class (`4xx`). */
const KNOWN_STATUSES = new Set([
  "200",
  "202",
  "204",
  "400",
  "401",
  "403",
  "404",
  "405",
  "406",
  "408",
  "409",
  "413",
  "415",
  "422",
  "429",
  "499",
  "500",
  "502",
  "503",
  "504",
]);

/** Keeps the outcome label bounded whatever status an upstream answers with. */
export function outcomeLabel(outcome: string): string {
  if (KNOWN_OUTCOMES.has(outcome) || KNOWN_STATUSES.has(outcome)) return outcome;
  return /^[1-5]\d\d$/.test(outcome) ? `${outcome[0]}xx` : "other";
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

export function createMetrics(servers: Iterable<string> = []): Metrics {
  const known = new Set(servers);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics: Metrics = {
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
    auditBacklogRefusals: new Counter({
      name: "portcullis_audit_backlog_refusals_total",
      help: "Requests refused 503 because the audit backlog was full (audit.maxPendingRecords); one record counts them once it drains",
      registers: [registry],
    }),
    auditWriteErrors: new Counter({
      name: "portcullis_audit_write_errors_total",
      help: "Audit batches whose write failed; group-committed records are retried, durable ones refused",
      registers: [registry],
    }),
    limitRefusals: new Counter({
      name: "portcullis_limit_refusals_total",
      help: "Requests refused with 429 because a per-caller cap was reached, by cap",
      labelNames: ["limit"],
      registers: [registry],
    }),
    callsInFlight: new Gauge({
      name: "portcullis_calls_in_flight",
      help: "Calls being forwarded to an upstream now (all callers)",
      registers: [registry],
    }),
    openStreams: new Gauge({
      name: "portcullis_open_streams",
      help: "2025-x GET streams open now (all callers)",
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: "portcullis_upstream_errors_total",
      help: "Upstream faults (invalid response, timeout, unreachable, restarting) by server and status",
      labelNames: ["server", "status"],
      registers: [registry],
    }),
    serverLabel: (name) => (known.has(name) ? name : "unknown"),
  };
  // Every cap's series exists from the start at 0, so a refusal never adds a series.
  for (const limit of LIMIT_NAMES) metrics.limitRefusals.labels({ limit }).inc(0);
  return metrics;
}
