/**
 * The request pipeline, in one place. Each MCP request (MCP Streamable HTTP: POST, and the
 * 2025-x GET stream and DELETE) runs the stages of its table below, in order. A stage reads
 * and extends the request's CallState and either continues or returns a Refusal carrying its
 * audit facts; refuse.ts turns a refusal into the wire reply and the audit record. Every
 * decision is recorded; anything unexpected is a refusal (fail closed).
 *
 * Adding a stage is one file in ./stages/ and one line in a table.
 * Stages are synchronous unless they have to wait: a request whose stages all answer at once
 * costs no promise until it is forwarded.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { requestRecord } from "../audit/requestRecord.js";
import { anonymousPrincipal, authenticate as authenticateBearer } from "../authn/authenticate.js";
import { CallRule } from "../authz/mayCall.js";
import {
  CallState,
  deny,
  type HttpMethod,
  newDecisionId,
  type Outcome,
  REPLIED,
  type Step,
} from "./callState.js";
import type { PipelineDeps, StageDeps } from "./deps.js";
import { type Refuse, refusalReply } from "./refuse.js";
import { auditCapacity } from "./stages/auditCapacity.js";
import { authenticate, bearerVerifiers } from "./stages/authenticate.js";
import { callerLimit, streamLimit } from "./stages/callerLimit.js";
import { classify } from "./stages/classify.js";
import { credentialScope } from "./stages/credentialScope.js";
import { finish } from "./stages/finish.js";
import { forward, forwardStream } from "./stages/forward.js";
import { host } from "./stages/host.js";
import { oauthScope } from "./stages/oauthScope.js";
import { policy } from "./stages/policy.js";
import { record } from "./stages/record.js";
import { review } from "./stages/review.js";
import { serverScope } from "./stages/serverScope.js";
import { taskScope } from "./stages/taskScope.js";
import { toolPins } from "./stages/toolPins.js";

type Stage = readonly [name: string, build: (deps: StageDeps) => Step];

/** POST /mcp/<server>: one JSON-RPC message. */
export const POST_STAGES: readonly Stage[] = [
  ["audit capacity", auditCapacity], // the trail can take the record (else 503, counted)
  ["host", host], // Host and Origin name this gateway (DNS rebinding)
  ["authenticate", authenticate], // API key or OAuth token → Principal
  ["server", serverScope], // the server exists and is within the credential's scope
  ["classify", classify], // one JSON-RPC message; mirrored and parameter headers agree
  ["credential scope", credentialScope], // tool-scoped keys: the tool and the method
  ["task scope", taskScope], // a task token's call budget, charged across replicas
  ["OAuth scope", oauthScope], // the token's scopes cover the route and the tool
  ["caller limit", callerLimit], // calls in flight per caller and server
  ["tool pins", toolPins], // a changed tool waits for an operator
  ["policy", policy], // allow, deny or review
  ["review", review], // a human approves the call, or it is refused
  ["record", record], // the allow is recorded (durably for write tiers)
  ["forward", forward], // the upstream answers; lists filtered by the same may-call rule
  ["finish", finish], // metrics
];

/** GET /mcp/<server> (2025-x standalone SSE stream) and DELETE (session end). */
export const STREAM_STAGES: readonly Stage[] = [
  ["audit capacity", auditCapacity],
  ["host", host],
  ["authenticate", authenticate],
  ["server", serverScope],
  ["stream limit", streamLimit], // GET streams per caller and per session
  ["record", record],
  ["forward", forwardStream],
  ["finish", finish],
];

/** One table, built: its steps and their names (for the refusal of a stage that threw). */
class BuiltStages {
  readonly steps: readonly Step[];
  readonly names: readonly string[];
  constructor(table: readonly Stage[], deps: StageDeps) {
    this.steps = table.map(([, build]) => build(deps));
    this.names = table.map(([name]) => name);
  }
}

export class Pipeline {
  private readonly deps: StageDeps;
  private readonly post: BuiltStages;
  private readonly stream: BuiltStages;
  private readonly refuse: Refuse;
  private readonly finish: Step;

  constructor(parts: PipelineDeps) {
    this.deps = {
      ...parts,
      callRule: new CallRule(parts.authorization, parts.authorization.tools),
      anonymous: anonymousPrincipal(parts.environment),
    };
    this.post = new BuiltStages(POST_STAGES, this.deps);
    this.stream = new BuiltStages(STREAM_STAGES, this.deps);
    this.refuse = refusalReply(this.deps);
    this.finish = finish(this.deps);
  }

  /** Runs one request to its end; never rejects (every fault becomes a refusal). */
  handle(
    method: HttpMethod,
    server: string,
    headers: IncomingHttpHeaders,
    body: string | null,
    sourceAddress: string | null,
    res: ServerResponse,
  ): void | Promise<void> {
    const { deps } = this;
    const call = new CallState(
      method,
      deps.environment,
      server,
      deps.routes,
      headers,
      body,
      sourceAddress,
      res,
    );
    return this.run(method === "POST" ? this.post : this.stream, call, 0);
  }

  private run(stages: BuiltStages, call: CallState, from: number): void | Promise<void> {
    const { steps } = stages;
    for (let i = from; i < steps.length; i++) {
      let out: Outcome | Promise<Outcome>;
      try {
        out = (steps[i] as Step)(call);
      } catch (err) {
        return this.fail(stages, call, i, err);
      }
      if (out === undefined) continue;
      if (out instanceof Promise) {
        return out.then(
          (o) => (o === undefined ? this.run(stages, call, i + 1) : this.stop(call, o)),
          (err: unknown) => this.fail(stages, call, i, err),
        );
      }
      return this.stop(call, out);
    }
  }

  private stop(call: CallState, out: Exclude<Outcome, undefined>): void {
    if (out !== REPLIED) this.refuse(call, out);
    else this.finish(call);
  }

  /** A stage that threw: refused and recorded, never passed through (fail closed). */
  private fail(stages: BuiltStages, call: CallState, i: number, err: unknown): void {
    const name = stages.names[i] ?? "a stage";
    this.deps.log.error({ err, server: call.server, stage: name }, "request stage failed: refusing");
    try {
      this.refuse(call, deny(err, `${name} failed unexpectedly: failing closed`));
    } catch (fault) {
      this.deps.log.error({ err: fault }, "cannot refuse a request");
      call.out.destroy();
    }
  }

  /**
   * A body refused for its size (before any stage ran) is a decision too: recorded with the
   * caller named when its credential authenticates. Returns the decision id at once, for the
   * reply; the record follows.
   */
  recordOversized(server: string, headers: IncomingHttpHeaders, reason: string): string {
    const { deps } = this;
    const route = deps.routes.get(server);
    const version = deps.authorization.policy().version;
    const decisionId = newDecisionId();
    const facts = {
      environment: deps.environment,
      server,
      principal: null,
      msg: null,
      started: performance.now(),
      policy: { decisionId, ruleIds: [], version },
    };
    const detail = { event: "request.too_large" };
    const record = async (): Promise<void> => {
      try {
        const result = await authenticateBearer(
          headers,
          deps.keyring,
          route?.anonymous ? deps.anonymous : null,
          bearerVerifiers(deps),
          `${deps.baseUrl()}/mcp/${server}`,
        );
        const who = result.ok ? { ...facts, principal: result.principal } : facts;
        deps.audit.record(
          requestRecord(who, "deny", reason, detail, version, result.ok ? null : result.credentialId),
        );
      } catch {
        deps.audit.record(requestRecord(facts, "deny", reason, detail, version));
      }
    };
    void record();
    return decisionId;
  }
}
