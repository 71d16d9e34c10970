/**
 * How audit records leave the store: one JSON view (`--json`, JSON Lines export) and
 * OpenTelemetry log records (OTLP/JSON, opentelemetry-proto `ExportLogsServiceRequest`:
 * `{"resourceLogs":[{resource, scopeLogs:[{scope, logRecords:[…]}]}]}`), one complete
 * request per line holding one page of records — the "JSON lines of OTLP requests" format
 * that the OpenTelemetry Collector's `otlpjsonfile` receiver and most SIEM shippers read.
 */
import type { StoredAuditRecord } from "../store/types.js";
import { VERSION } from "../version.js";
import { recordTask } from "./taskDetail.js";

/** The JSON form of one record: `portcullis audit search --json`, JSONL export, tail. */
export function auditRecordView(r: StoredAuditRecord): Record<string, unknown> {
  return {
    seq: r.seq,
    at: r.at.toISOString(),
    chain: r.chain ?? null,
    chainSeq: r.chainSeq ?? null,
    environment: r.environment,
    principal: r.principal,
    method: r.method,
    credentialId: r.credentialId,
    server: r.server,
    rpcMethod: r.rpcMethod,
    tool: r.tool,
    decision: r.decision,
    reason: r.reason,
    latencyUs: r.latencyUs,
    decisionId: r.decisionId ?? null,
    ruleIds: r.ruleIds ?? null,
    policyVersion: r.policyVersion ?? null,
    arguments: r.arguments ?? null,
    ...recordTask(r.detail),
    detail: r.detail,
    prevHash: r.prevHash ?? null,
    hash: r.hash ?? null,
  };
}

/** One line of `portcullis audit tail|search` without --json. */
export function auditRecordLine(r: StoredAuditRecord): string {
  const target = [r.server, r.tool ?? r.rpcMethod].filter(Boolean).join(" ");
  return [r.at.toISOString(), r.decision.padEnd(6), r.principal ?? "-", target || "-", r.reason].join("  ");
}

type AnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { boolValue: boolean }
  | { doubleValue: number };

interface KeyValue {
  key: string;
  value: AnyValue;
}

function attr(key: string, value: unknown): KeyValue | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return { key, value: { stringValue: value } };
  if (typeof value === "boolean") return { key, value: { boolValue: value } };
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? { key, value: { intValue: String(value) } }
      : { key, value: { doubleValue: value } };
  }
  return { key, value: { stringValue: JSON.stringify(value) } };
}

/** OpenTelemetry severity numbers (logs data model): INFO 9, WARN 13. */
const SEVERITY: Record<StoredAuditRecord["decision"], [number, string]> = {
  allow: [9, "INFO"],
  review: [13, "WARN"],
  deny: [13, "WARN"],
};

export function otelLogRecord(r: StoredAuditRecord): Record<string, unknown> {
  const nanos = `${BigInt(r.at.getTime()) * 1_000_000n}`;
  const [severityNumber, severityText] = SEVERITY[r.decision];
  const { taskId, actor } = recordTask(r.detail);
  const attributes = [
    attr("event.name", "portcullis.audit.decision"),
    attr("enduser.id", r.principal),
    attr("deployment.environment.name", r.environment),
    attr("portcullis.decision", r.decision),
    attr("portcullis.auth.method", r.method),
    attr("portcullis.credential.id", r.credentialId),
    attr("portcullis.server", r.server),
    attr("rpc.method", r.rpcMethod),
    attr("portcullis.tool", r.tool),
    attr("portcullis.task.id", taskId),
    attr("portcullis.actor.chain", actor),
    attr("portcullis.decision.id", r.decisionId),
    attr("portcullis.policy.rule_ids", r.ruleIds),
    attr("portcullis.policy.version", r.policyVersion),
    attr("portcullis.latency_us", r.latencyUs),
    attr("portcullis.arguments", r.arguments),
    attr("portcullis.detail", r.detail),
    attr("portcullis.audit.seq", r.seq),
    attr("portcullis.audit.chain", r.chain),
    attr("portcullis.audit.chain_seq", r.chainSeq),
    attr("portcullis.audit.hash", r.hash),
  ].filter((a): a is KeyValue => a !== null);
  return {
    timeUnixNano: nanos,
    observedTimeUnixNano: nanos,
    severityNumber,
    severityText,
    body: { stringValue: r.reason },
    attributes,
  };
}

/** One OTLP/JSON ExportLogsServiceRequest holding `records`. */
export function otelLogsDocument(records: readonly StoredAuditRecord[]): Record<string, unknown> {
  return {
    resourceLogs: [
      {
        resource: { attributes: [attr("service.name", "portcullis"), attr("service.version", VERSION)] },
        scopeLogs: [
          { scope: { name: "portcullis.audit", version: VERSION }, logRecords: records.map(otelLogRecord) },
        ],
      },
    ],
  };
}
