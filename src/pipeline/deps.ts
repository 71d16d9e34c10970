/**
 * What the request pipeline is built from: the parts it calls, each through the narrow
 * interface it uses (so a test can build the pipeline over a SQLite store and small fakes).
 * Built once at startup; nothing on the request path branches on raw configuration.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { AuditWriter } from "../audit/writer.js";
import type { Keyring } from "../authn/keyring.js";
import type { AccessTokenVerifier, OAuthRuntime } from "../authn/oauthToken.js";
import type { PeerCheck } from "../authn/spiffe/x509Svid.js";
import type { ToolFactsSource } from "../authz/authorize.js";
import type { CallRule } from "../authz/mayCall.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import type { ListedTools } from "../classify/listedTools.js";
import type { Principal } from "../core/principal.js";
import type { ServerRoute } from "../forward/routes.js";
import type { ReviewGate } from "../review/gate.js";
import type { TaskCalls } from "../tasks/runtime.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { CallerLimits } from "./callerLimits.js";

/** A configured MCP server: its upstream and what a request to it needs (src/forward/routes.ts). */
export type Route = ServerRoute;

/** Request-time authorization: the policy in force and what is known of each server's tools. */
export interface Authorization {
  /** The current compiled policy (hot-reloaded). */
  policy(): CompiledPolicy;
  tools: ToolFactsSource;
  /** Sees the tool definitions of a tools/list result (tool pinning). */
  observeTools(server: string, tools: readonly unknown[]): void;
  /** True while a changed tool waits for an operator's acceptance (pinning.onChange: block). */
  blocked(server: string, tool: string): boolean;
}

/** The audit trail as the pipeline writes it. */
export type AuditSink = Pick<AuditWriter, "record" | "recordDurable" | "accepting" | "noteUnrecorded">;

/** Runtime review (src/review/): holds calls policy decides `review` for. */
export type ReviewHandler = Pick<ReviewGate, "handles" | "handle">;

export interface PipelineDeps {
  environment: string;
  routes: ReadonlyMap<string, Route>;
  authorization: Authorization;
  keyring: Keyring;
  audit: AuditSink;
  metrics: Metrics;
  log: Logger;
  /** OAuth verification; read per request (the verifier may be set once the base URL is known). */
  oauth: OAuthRuntime;
  /**
   * Verifiers of the other bearer tokens: task tokens (src/tasks/) and SPIFFE JWT-SVIDs
   * (src/authn/spiffe/); null where not configured. Read per request, like `oauth`.
   */
  bearers: { task: AccessTokenVerifier | null; jwtSvid: AccessTokenVerifier | null };
  /** Charges task tokens' call budgets (src/tasks/runtime.ts); absent: a budgeted task's calls are refused. */
  tasks?: TaskCalls | null;
  /**
   * The verdict on a TLS connection's client certificate (SPIFFE X.509-SVID,
   * src/authn/spiffe/x509Svid.ts); absent or null when the listener asks for none.
   */
  peerIdentity?: ((socket: TLSSocket) => PeerCheck | null) | null;
  /** Whether OAuth is configured: 401s then carry the RFC 9728 challenge parameters. */
  oauthEnabled: boolean;
  baseUrl(): string;
  /** DNS-rebinding protection: the reason a request's Host/Origin is refused, or null. */
  hostCheck(headers: IncomingHttpHeaders): string | null;
  limits: CallerLimits;
  /** Tools and `x-mcp-header` parameters learnt from relayed tools/list results. */
  listedTools: ListedTools;
  /** Holds calls policy decides `review` for; null refuses them (-32041). */
  review: ReviewHandler | null;
}

/** What every stage is built from: the parts, and what the pipeline derives from them once. */
export interface StageDeps extends PipelineDeps {
  /** "May this caller call this tool" (src/authz/mayCall.ts), for calls and list filtering. */
  callRule: CallRule;
  /** The principal of requests to a server that allows anonymous access. */
  anonymous: Principal;
}
