/**
 * The one place a refusal becomes what the client and the operator see: the audit record
 * (unless the stage says it is already recorded), the JSON-RPC error reply (errorReply:
 * status, code, WWW-Authenticate / Retry-After), and the request's metrics.
 *
 * Every recorded refusal carries its decision id to the client (`error.data.decisionId`), the
 * same id its audit record holds.
 *
 * Which refusals stay at the HTTP layer (clients act on the status itself): 401 with its
 * challenge and 403 `insufficient_scope` (MCP authorization, "Error Handling" and "Scope
 * Challenge Handling": the client signs in or steps up), 403 for a foreign Host/Origin (MCP
 * Streamable HTTP, "Security": before authentication), 400 (HeaderMismatch, malformed
 * requests), 404, 413, 415, 429 and 503 with Retry-After. Every other 403 — the refusal of an
 * authenticated caller's JSON-RPC request by its credential's scope, policy, a tool pin or
 * review — is an answer to that request: its JSON-RPC error response with HTTP 200, which MCP
 * SDK clients hand to the caller as the request's error (an HTTP 403 reaches them only as a
 * transport error without the body). docs/protocol.md lists each.
 */
import { requestRecord } from "../audit/requestRecord.js";
import { errorReply, type JsonRpcId } from "../core/errors.js";
import { sendJson } from "../core/reply.js";
import { limitOf } from "./callerLimits.js";
import type { CallState, Refusal } from "./callState.js";
import type { PipelineDeps } from "./deps.js";
import { finish } from "./stages/finish.js";

export type Refuse = (call: CallState, refusal: Refusal) => void;

export function refusalReply(deps: PipelineDeps): Refuse {
  const { audit, authorization, log, metrics } = deps;
  const end = finish(deps);
  return (call, refusal) => {
    let decisionId = refusal.recordedAs;
    if (refusal.decision !== null) {
      const version = authorization.policy().version;
      decisionId = call.decisionId(version);
      audit.record(
        requestRecord(call, refusal.decision, refusal.reason, refusal.detail, version, refusal.credentialId),
      );
    }
    const err = refusal.error;
    const reply = errorReply(err, requestId(call));
    if (reply.status === 500) log.error({ err, server: call.server }, "unexpected error on the request path");
    const { body } = reply;
    if (decisionId !== null) body.error.data = withDecisionId(body.error.data, decisionId);
    const limit = limitOf(err);
    if (limit !== null) metrics.limitRefusals.inc({ limit });
    const inBand = answersInBand(call, reply.status, reply.headers, body.id);
    // What an MCP client shows its user is the message: it names the decision too.
    if (inBand && decisionId !== null && !body.error.message.includes(decisionId))
      body.error.message = `${body.error.message} (decision ${decisionId})`;
    const out = call.out;
    if (!out.headersSent) sendJson(out, inBand ? 200 : reply.status, body, reply.headers);
    else out.destroy();
    // Metrics count the refusal by what it is (403), however it travels.
    call.label = String(reply.status);
    end(call);
  };
}

/**
 * The id to echo (JSON-RPC 2.0 §5): the classified message's, or, for an authenticated
 * caller refused before the body was classified (server scope, unknown server), the id read
 * from the body. An unauthenticated caller's body is never parsed, and a body the classifier
 * could not make a message of is not parsed again (its error carries the id it could read).
 */
function requestId(call: CallState): JsonRpcId {
  if (call.msg !== null) return call.msg.id;
  if (call.principal === null || call.body === null || call.bodyRead) return null;
  try {
    const parsed: unknown = JSON.parse(call.body);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
    const id = (parsed as { id?: unknown }).id;
    return typeof id === "string" || (typeof id === "number" && Number.isFinite(id)) ? id : null;
  } catch {
    return null;
  }
}

/** See the module comment: an authenticated caller's request refused by authorization. */
function answersInBand(
  call: CallState,
  status: number,
  headers: Record<string, string>,
  id: JsonRpcId,
): boolean {
  return (
    status === 403 &&
    call.principal !== null &&
    call.method === "POST" &&
    id !== null &&
    headers["www-authenticate"] === undefined
  );
}

function withDecisionId(data: unknown, decisionId: string): unknown {
  if (data === undefined) return { decisionId };
  if (data !== null && typeof data === "object" && !Array.isArray(data)) return { ...data, decisionId };
  return data;
}
