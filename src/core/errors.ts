/**
 * Protocol failures as typed errors whose codes equal the wire values, and the one
 * function that maps an error to its HTTP response. The client gets the generic message;
 * `reason` (precise) goes to the audit log only.
 */
import { isStoreOutage, outageReason } from "./outage.js";

/** JSON-RPC 2.0 and MCP error codes used by the gateway. */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Implementation-defined range (-32000..-32019): gateway refusals. */
  Unauthorized: -32001,
  Forbidden: -32003,
  UpstreamUnavailable: -32010,
  UpstreamTimeout: -32011,
  SessionNotFound: -32012,
  PayloadTooLarge: -32013,
  /** The store is unreachable: the request was not decided; retry after `Retry-After`. */
  StoreUnavailable: -32019,
  /** A per-caller cap was reached (HTTP 429 with Retry-After). */
  TooManyRequests: -32014,
  /** MCP 2026-07-28 transport: header/body disagreement. */
  HeaderMismatch: -32020,
  UnsupportedProtocolVersion: -32022,
  /** Implementation-defined (-32040..-32049): policy refusals; `data.decisionId` finds the audit record. */
  PolicyDenied: -32040,
  ReviewRequired: -32041,
  ToolChanged: -32042,
} as const;

export type JsonRpcId = string | number | null;

export class GatewayError extends Error {
  override name = "GatewayError";
  /** The JSON-RPC id to echo in the error response, when known. */
  rpcId: JsonRpcId = null;
  constructor(
    readonly status: number,
    readonly code: number,
    /** Shown to the client. */
    message: string,
    /** Precise reason for the audit log; never shown to the client. */
    readonly reason: string = message,
    readonly data?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  withId(id: JsonRpcId): this {
    this.rpcId = id;
    return this;
  }
}

/**
 * 401 for every authentication failure: the same generic body whatever the cause.
 * `challenge` adds RFC 9728 / RFC 6750 parameters (resource_metadata, scope) when OAuth is on.
 */
export function unauthorized(reason: string, challenge = ""): GatewayError {
  return new GatewayError(401, RpcCode.Unauthorized, "Unauthorized", reason, undefined, {
    "www-authenticate": `Bearer error="invalid_token"${challenge ? `, ${challenge}` : ""}`,
  });
}

export function missingCredential(challenge = ""): GatewayError {
  return new GatewayError(401, RpcCode.Unauthorized, "Unauthorized", "no credential presented", undefined, {
    "www-authenticate": challenge ? `Bearer ${challenge}` : "Bearer",
  });
}

/** RFC 6750 §3.1 insufficient_scope, naming every scope the operation needs (step-up). */
export function insufficientScope(
  required: readonly string[],
  reason: string,
  resourceMetadata: string,
): GatewayError {
  return new GatewayError(
    403,
    RpcCode.Forbidden,
    "Forbidden: insufficient scope",
    reason,
    { requiredScopes: required },
    {
      "www-authenticate": `Bearer error="insufficient_scope", scope="${required.join(" ")}", resource_metadata="${resourceMetadata}"`,
    },
  );
}

/** Seconds a client is asked to wait while the store is unreachable (RFC 9110 §10.2.3). */
export const STORE_RETRY_AFTER_SECONDS = 1;

/**
 * RFC 9110 §15.6.4 503: the store is unreachable, so the request cannot be decided (nor a
 * credential judged). Never a 401: that would tell an OAuth client to discard a valid token.
 */
export function storeUnavailable(reason: string): GatewayError {
  return new GatewayError(
    503,
    RpcCode.StoreUnavailable,
    "Service temporarily unavailable; retry later",
    reason,
    undefined,
    { "retry-after": String(STORE_RETRY_AFTER_SECONDS) },
  );
}

export function forbidden(reason: string): GatewayError {
  return new GatewayError(403, RpcCode.Forbidden, "Forbidden", reason);
}

/**
 * A policy refusal: generic message and the decision id the operator can look up; the rule
 * text and ids stay in the audit log.
 */
export function policyRefusal(
  kind: "deny" | "review" | "tool-changed",
  decisionId: string,
  reason: string,
): GatewayError {
  const [code, message] =
    kind === "deny"
      ? [RpcCode.PolicyDenied, "Forbidden by policy"]
      : kind === "review"
        ? [RpcCode.ReviewRequired, "This call needs human review, which this method cannot wait for"]
        : [RpcCode.ToolChanged, "This tool changed since it was approved; an operator must review it"];
  return new GatewayError(403, code, `${message} (decision ${decisionId})`, reason, { decisionId });
}

export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: {
    jsonrpc: "2.0";
    id: JsonRpcId;
    error: { code: number; message: string; data?: unknown };
  };
}

/**
 * The single error → HTTP response mapping. Unexpected faults are 500s, never 400s; a store
 * that cannot be reached is a 503 with Retry-After wherever the error surfaced.
 */
export function errorReply(fault: unknown, id: JsonRpcId = null): ErrorReply {
  const err =
    !(fault instanceof GatewayError) && isStoreOutage(fault) ? storeUnavailable(outageReason(fault)) : fault;
  if (err instanceof GatewayError) {
    const error: ErrorReply["body"]["error"] = { code: err.code, message: err.message };
    if (err.data !== undefined) error.data = err.data;
    return {
      status: err.status,
      headers: err.headers ?? {},
      body: { jsonrpc: "2.0", id: err.rpcId ?? id, error },
    };
  }
  return {
    status: 500,
    headers: {},
    body: { jsonrpc: "2.0", id, error: { code: RpcCode.InternalError, message: "Internal error" } },
  };
}

/** The per-caller caps a 429 can name (`data.limit`, and the metrics label). */
export const LIMIT_NAMES = [
  "calls_in_flight",
  "streams_per_caller",
  "streams_per_session",
  "pending_approvals",
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/**
 * RFC 6585 §4 429 Too Many Requests with `Retry-After` (RFC 9110 §10.2.3) and a JSON-RPC
 * error whose `data.limit` names the per-caller cap reached.
 */
export function tooManyRequests(limit: LimitName, retryAfterSeconds: number, reason: string): GatewayError {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
  return new GatewayError(
    429,
    RpcCode.TooManyRequests,
    "Too many requests: a per-caller limit was reached; retry later",
    reason,
    { limit, retryAfterSeconds: seconds },
    { "retry-after": String(seconds) },
  );
}
