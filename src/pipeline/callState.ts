/**
 * The one typed context a request carries through the pipeline: what the HTTP adapter
 * handed over (server, headers, body, response), and what each stage adds (the principal,
 * the classified message, the policy decision, where the reply goes). A stage either
 * continues or returns a `Refusal` carrying its audit facts; src/pipeline/refuse.ts turns
 * that into the wire reply and the audit record.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { PolicyFacts, RequestDecision, RequestFacts } from "../audit/requestRecord.js";
import type { PolicyEnvironment } from "../authz/authorize.js";
import type { CompiledPolicy, PolicyDecision, RiskTier } from "../authz/policy/types.js";
import type { ClassifiedMessage } from "../classify/message.js";
import type { Principal } from "../core/principal.js";
import type { Route } from "./deps.js";

const NO_PARAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Placeholder until the policy stage reads the clock. */
const NOT_YET = new Date(0);

export type HttpMethod = "POST" | "GET" | "DELETE";

export class CallState implements RequestFacts, PolicyEnvironment {
  /** performance.now() at arrival: latency in records and metrics. */
  readonly started = performance.now();
  readonly route: Route | undefined;
  principal: Principal | null = null;
  msg: ClassifiedMessage | null = null;
  /** The classify stage read the body (whether or not it made a message of it). */
  bodyRead = false;
  /** `Mcp-Param-*` headers rebuilt from the body for the upstream. */
  paramHeaders: Readonly<Record<string, string>> = NO_PARAM_HEADERS;
  /** PolicyEnvironment, completed by the policy stage. */
  protocolVersion: string | null = null;
  now: Date = NOT_YET;
  /** The policy set the request was decided by (list filtering reads the same one). */
  policySet: CompiledPolicy | null = null;
  decision: PolicyDecision | null = null;
  /** Set once policy decided: the id the client is given, the rules, the version. */
  policy: PolicyFacts | null = null;
  /** The target tool's risk tier: write and destructive calls are recorded durably first. */
  tier: RiskTier | null = null;
  /** Why the request is allowed (the audit record's reason). */
  reason: string;
  /** Where the reply goes: the client's response, or the stream of a call held for review. */
  out: ServerResponse;
  /** A reviewed call's forwarding was audited when its approval was consumed. */
  reviewed = false;
  /** The metrics outcome, once known. */
  label: string | null = null;
  /** Releases the caller-limit slot (called once the response closes). */
  private release: (() => void) | null = null;
  /** The response closed (finished, or the client went away). */
  private over = false;

  /**
   * The id of this request's decision: the policy stage's, or one minted for a refusal
   * decided before policy ran. The client is given it with every refusal; the audit record
   * holds it.
   */
  decisionId(policyVersion: string): string {
    if (this.policy === null)
      this.policy = { decisionId: newDecisionId(), ruleIds: [], version: policyVersion };
    return this.policy.decisionId;
  }

  constructor(
    readonly method: HttpMethod,
    readonly environment: string,
    readonly server: string,
    routes: ReadonlyMap<string, Route>,
    readonly headers: IncomingHttpHeaders,
    /** The POST body as text (null for GET and DELETE). */
    readonly body: string | null,
    readonly sourceAddress: string | null,
    readonly res: ServerResponse,
  ) {
    this.route = routes.get(server);
    this.out = res;
    this.reason = method === "POST" ? "credential valid and in scope" : `${method} stream`;
    // One listener per response: releases the slot (forward/ watches for a client that leaves).
    res.once("close", () => this.closed());
  }

  /** Keeps a caller-limit slot until the response closes. */
  hold(release: () => void): void {
    if (this.over) release();
    else this.release = release;
  }

  private closed(): void {
    this.over = true;
    this.release?.();
    this.release = null;
  }
}

/**
 * A stage's refusal: the error for the wire and, unless already recorded, its audit facts.
 * Its decision id goes both into the audit record and into the reply's `error.data`
 * (src/pipeline/refuse.ts): minted there for a refusal to record, carried here for one a
 * stage already recorded.
 */
export class Refusal {
  constructor(
    /** A GatewayError (its status and code go on the wire) or an unexpected fault (500). */
    readonly error: unknown,
    /** The audit record's decision; null when the refusal is already recorded or cannot be. */
    readonly decision: RequestDecision | null,
    readonly reason: string,
    readonly detail: Record<string, unknown> | null = null,
    /** The credential a refused authentication named (there is no principal yet). */
    readonly credentialId: string | null = null,
    /**
     * For a refusal already recorded (decision null): the decision id of its record; null
     * only when no record could be written (the audit trail is full or failing).
     */
    readonly recordedAs: string | null = null,
  ) {}
}

/** A refusal recorded as `deny`. */
export function deny(
  error: unknown,
  reason: string,
  detail: Record<string, unknown> | null = null,
  credentialId: string | null = null,
): Refusal {
  return new Refusal(error, "deny", reason, detail, credentialId);
}

/** A refusal a stage already recorded, under the decision id `decisionId`. */
export function recorded(error: unknown, decisionId: string): Refusal {
  return new Refusal(error, null, "", null, null, decisionId);
}

/**
 * A refusal that cannot be recorded (the audit trail is full or failing), or one the client
 * never reads (it went away): no decision id, since no record would hold it.
 */
export function unrecorded(error: unknown): Refusal {
  return new Refusal(error, null, "");
}

/** A stage that wrote the reply itself (e.g. review answered `input_required`). */
export const REPLIED = Symbol("replied");

/** What a stage returns: continue (undefined), a refusal, or REPLIED. */
export type Outcome = Refusal | typeof REPLIED | undefined;

/** One stage: synchronous unless it has to wait (no promise per stage when nothing is pending). */
export type Step = (call: CallState) => Outcome | Promise<Outcome>;

let decisionPrefix: string | null = null;
let decisionCounter = 0;

/**
 * A short id the client is given with a policy refusal and the operator finds in the audit
 * log: a random per-process prefix (72 bits) and a counter, so no random bytes per request.
 * Not a secret; unique across replicas and restarts.
 */
export function newDecisionId(): string {
  // Never starting with `-`: users paste decision ids into commands (`--decision-id <id>`).
  while (decisionPrefix === null || decisionPrefix.startsWith("-")) {
    const bytes = new Uint8Array(9);
    crypto.getRandomValues(bytes);
    decisionPrefix = Buffer.from(bytes).toString("base64url");
  }
  return `${decisionPrefix}${(decisionCounter++).toString(36)}`;
}
