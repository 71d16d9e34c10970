/**
 * Forward the allowed request to its upstream (src/forward/), which writes the reply itself
 * (SSE passes through). A list result is filtered by the same "may call" rule a tools/call
 * meets (src/authz/mayCall.ts); its tool definitions are observed for pinning and for the
 * `x-mcp-header` bindings. A forwarding fault after the allow was recorded is recorded too.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { ClassifiedMessage } from "../../classify/message.js";
import { GatewayError } from "../../core/errors.js";
import type { Principal } from "../../core/principal.js";
import { isListMethod } from "../../forward/results.js";
import type { ListFilter, PostExchange, StreamExchange } from "../../forward/upstream.js";
import { type CallState, deny, type Outcome, type Step, unrecorded } from "../callState.js";
import type { StageDeps } from "../deps.js";

/** What a list result shows this caller: the entries it may call (or ask to). */
class CallerListFilter implements ListFilter {
  constructor(
    private readonly deps: StageDeps,
    private readonly call: CallState,
  ) {}

  visible(list: string, name: string): boolean {
    const { call } = this;
    if (call.principal === null || call.policySet === null) return false;
    return this.deps.callRule.visible(call.policySet, call.principal, call.server, list, name, call);
  }

  observeTools(tools: readonly unknown[]): void {
    this.deps.authorization.observeTools(this.call.server, tools);
    this.deps.listedTools.observe(this.call.server, tools);
  }
}

/** The exchange handed to the upstream: it watches `res` for a client that leaves (no AbortController per call). */
class Exchange implements PostExchange, StreamExchange {
  readonly principal: Principal;
  readonly msg: ClassifiedMessage;
  readonly headers: IncomingHttpHeaders;
  readonly res: ServerResponse;
  readonly paramHeaders: Readonly<Record<string, string>>;
  constructor(
    call: CallState,
    principal: Principal,
    msg: ClassifiedMessage,
    readonly filter: ListFilter | null,
  ) {
    this.principal = principal;
    this.msg = msg;
    this.headers = call.headers;
    this.res = call.out;
    this.paramHeaders = call.paramHeaders;
  }
}

export function forward(deps: StageDeps): Step {
  const { log, metrics } = deps;

  const failed = (call: CallState, err: unknown): Outcome => {
    if (!(err instanceof GatewayError)) return deny(err, "forwarding failed unexpectedly");
    log.warn({ server: call.server, reason: err.reason }, err.message);
    if (err.status >= 502) metrics.upstreamErrors.inc({ server: call.server, status: String(err.status) });
    // The allow was recorded before forwarding; what the client got instead is recorded too
    // (not a client that went away: nobody reads that reply).
    if (err.status === 499) return unrecorded(err);
    return deny(err, `forwarding failed: ${err.reason}`, { event: "upstream.fault", status: err.status });
  };

  const sent = async (call: CallState, x: Exchange): Promise<Outcome> => {
    try {
      await call.route?.upstream.post(x);
    } catch (err) {
      return failed(call, err);
    }
    call.label = call.out.statusCode < 400 ? "allowed" : String(call.out.statusCode);
    return undefined;
  };

  return (call) => {
    const { msg, principal } = call;
    if (msg === null || principal === null) return unrecorded(new Error("forward before classification"));
    const filter =
      msg.kind === "request" && isListMethod(msg.method) ? new CallerListFilter(deps, call) : null;
    return sent(call, new Exchange(call, principal, msg, filter));
  };
}

/** GET (the 2025-x standalone SSE stream) and DELETE (session termination). */
export function forwardStream(_deps: StageDeps): Step {
  const sent = async (call: CallState, x: StreamExchange): Promise<Outcome> => {
    const upstream = call.route?.upstream;
    if (upstream === undefined) return unrecorded(new Error("forward without a route"));
    try {
      await (call.method === "GET" ? upstream.get(x) : upstream.delete(x));
    } catch (err) {
      return unrecorded(err);
    }
    call.label = "allowed";
    return undefined;
  };
  return (call) => {
    const { principal } = call;
    if (principal === null) return unrecorded(new Error("forward before authentication"));
    return sent(call, { principal, headers: call.headers, res: call.res });
  };
}
