/**
 * The one place a refusal becomes what the client and the operator see: the audit record
 * (unless the stage says it is already recorded), the JSON-RPC error reply (errorReply:
 * status, code, WWW-Authenticate / Retry-After), and the request's metrics.
 */
import { requestRecord } from "../audit/requestRecord.js";
import { errorReply } from "../core/errors.js";
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
    if (refusal.decision !== null) {
      audit.record(
        requestRecord(
          call,
          refusal.decision,
          refusal.reason,
          refusal.detail,
          authorization.policy().version,
          refusal.credentialId,
        ),
      );
    }
    const err = refusal.error;
    const reply = errorReply(err, call.msg?.id ?? null);
    if (reply.status === 500) log.error({ err, server: call.server }, "unexpected error on the request path");
    const limit = limitOf(err);
    if (limit !== null) metrics.limitRefusals.inc({ limit });
    const out = call.out;
    if (!out.headersSent) sendJson(out, reply.status, reply.body, reply.headers);
    else out.destroy();
    call.label = String(reply.status);
    end(call);
  };
}
