/**
 * The request pipeline (src/pipeline/) built in-process for tests: real API keys issued into
 * a real SQLite store in a temp dir and read through a real Keyring, a real ToolCatalogue,
 * real compiled policy, real metrics and (optionally) a real ReviewGate; the audit trail
 * is a sink that keeps records, and the upstream a small fake MCP server that answers
 * tools/call and tools/list (its lists filtered by the pipeline's filter, as the HTTP
 * upstream does). Requests reach the pipeline through a bare node:http server whose handler
 * calls `Pipeline.handle` directly: no Fastify, no gateway process.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { issueKey } from "../../src/authn/keyLifecycle.js";
import { Keyring } from "../../src/authn/keyring.js";
import type { AccessTokenVerifier, TokenCheck } from "../../src/authn/oauthToken.js";
import { compilePolicy } from "../../src/authz/policy/compile.js";
import type { CompiledPolicy } from "../../src/authz/policy/types.js";
import { ToolCatalogue } from "../../src/authz/toolCatalogue.js";
import { ListedTools } from "../../src/classify/listedTools.js";
import { parseConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/schema.js";
import type { Principal } from "../../src/core/principal.js";
import { compileScopes } from "../../src/core/scope.js";
import { filterResult } from "../../src/forward/results.js";
import type { PostExchange, StreamExchange, Upstream } from "../../src/forward/upstream.js";
import { CallerLimits } from "../../src/pipeline/callerLimits.js";
import type { AuditSink, Route } from "../../src/pipeline/deps.js";
import { Pipeline } from "../../src/pipeline/index.js";
import { ReviewGate } from "../../src/review/gate.js";
import { openStore } from "../../src/store/open.js";
import type { AuditRecord, Store } from "../../src/store/types.js";
import { createMetrics } from "../../src/telemetry/metrics.js";

export const SERVER = "demo";
/** A second configured server, for keys scoped away from SERVER. */
export const OTHER = "other";
export const MODERN = "2026-07-28";

/** The test policy: discovery and three tools allowed, one denied, two need review (wire_money is never listed). */
const POLICY = `
rules:
  - id: allow-discovery
    effect: allow
    match: { methods: [initialize, ping, tools/list] }
  - id: allow-tools
    effect: allow
    match: { methods: [tools/call], tools: [echo, add, slow] }
  - id: deny-drop
    effect: deny
    match: { methods: [tools/call], tools: [drop_tables] }
  - id: review-transfer
    effect: review
    match: { methods: [tools/call], tools: [transfer, wire_money] }
`;

/** What the fake upstream lists (read tier: readOnlyHint). */
export const TOOLS = ["echo", "add", "slow", "drop_tables", "transfer", "pinned"].map((name) => ({
  name,
  inputSchema: { type: "object" },
  annotations: { readOnlyHint: true },
}));

/** A Keyring whose reload from the store can be made to fail (the store unreachable). */
export class SwitchableKeyring extends Keyring {
  failing = false;
  override refresh(): Promise<void> | undefined {
    if (this.failing) return Promise.reject(new Error("SQLITE_BUSY: database is locked"));
    return super.refresh();
  }
}

/** An audit trail that keeps what it is given; `full` makes it refuse like a full backlog. */
export class RecordingAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  full = false;
  unrecorded = 0;
  accepting(): boolean {
    return !this.full;
  }
  noteUnrecorded(): void {
    this.unrecorded++;
  }
  record(entry: AuditRecord): void {
    this.records.push(entry);
  }
  recordDurable(entry: AuditRecord): Promise<void> {
    this.records.push(entry);
    return Promise.resolve();
  }
  last(): AuditRecord | undefined {
    return this.records.at(-1);
  }
}

/** A fake MCP server: echoes tools/call, lists TOOLS (filtered for the caller), holds `slow`. */
export class FakeUpstream implements Upstream {
  readonly name = SERVER;
  readonly calls: string[] = [];
  private readonly held: Array<() => void> = [];

  async post(x: PostExchange): Promise<void> {
    const { msg } = x;
    this.calls.push(`${msg.method}${msg.name ? ` ${msg.name}` : ""}`);
    if (msg.name === "slow") await new Promise<void>((resolve) => this.held.push(resolve));
    let result: Record<string, unknown> = { content: [{ type: "text", text: `ran ${msg.name}` }] };
    if (msg.method === "tools/list") {
      result = { tools: TOOLS };
      if (x.filter !== null) {
        x.filter.observeTools?.(TOOLS);
        result = filterResult(msg.method, result, x.filter);
      }
    }
    const body = JSON.stringify({ jsonrpc: "2.0", id: msg.id, result });
    x.res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    x.res.end(body);
  }

  /** Lets every held `slow` call answer. */
  releaseSlow(): void {
    for (const release of this.held.splice(0)) release();
  }

  async get(x: StreamExchange): Promise<void> {
    x.res.writeHead(405).end();
  }

  async delete(x: StreamExchange): Promise<void> {
    x.res.writeHead(204).end();
  }

  processes(): number {
    return 0;
  }

  async close(): Promise<void> {}
}

/** An OAuth verifier that knows one token, whose principal holds the given scopes. */
export class FakeTokenVerifier implements AccessTokenVerifier {
  constructor(
    private readonly token: string,
    private readonly oauthScopes: readonly string[],
  ) {}
  verify(token: string): TokenCheck {
    if (token !== this.token) return { ok: false, reason: "unknown token", credentialId: null };
    const principal: Principal = {
      id: "user:alice",
      kind: "user",
      method: "oauth",
      name: "alice",
      environment: "dev",
      credentialId: "tok1",
      scopes: compileScopes([SERVER]),
      oauthScopes: new Set(this.oauthScopes),
      groups: [],
      issuedAt: new Date(Date.now() - 1000),
      expiresAt: new Date(Date.now() + 3_600_000),
    };
    return { ok: true, principal };
  }
}

export interface HarnessOptions {
  /** Build the pipeline with a real ReviewGate (else review decisions are refused). */
  reviewGate?: boolean;
  callsInFlightPerCaller?: number;
  /** OAuth scopes every request to the server needs (route.scopes). */
  routeScopes?: string[];
  toolScopes?: Record<string, string[]>;
  /** The OAuth scopes of the one token the fake verifier knows (`oauthToken`). */
  oauthScopes?: string[];
}

export interface Reply {
  status: number;
  headers: Headers;
  json: {
    id?: unknown;
    result?: Record<string, unknown>;
    error?: { code: number; message: string; data?: unknown };
  };
}

export class PipelineHarness {
  readonly audit = new RecordingAudit();
  readonly upstream = new FakeUpstream();
  readonly blocked = new Set<string>();
  readonly listed = new ListedTools();
  readonly secret = Buffer.from("pipeline-test-server-secret-0123456789", "utf8");
  oauthToken = "oauth-token-of-alice";
  /** Makes policy evaluation throw (a fault in the engine). */
  policyFault = false;
  url = "";
  private server: Server | null = null;
  private dir = "";
  store!: Store;
  keyring!: SwitchableKeyring;
  catalogue!: ToolCatalogue;
  review: ReviewGate | null = null;
  config!: Config;
  pipeline!: Pipeline;

  constructor(private readonly opts: HarnessOptions = {}) {}

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "portcullis-pipeline-"));
    this.store = await openStore(join(this.dir, "store.db"));
    this.config = parseConfig(
      {
        environment: "dev",
        dataDir: this.dir,
        servers: {
          [SERVER]: { transport: "http", url: "http://127.0.0.1:9/mcp" },
          [OTHER]: { transport: "http", url: "http://127.0.0.1:9/mcp" },
        },
      },
      "pipeline test",
    );
    this.keyring = new SwitchableKeyring(this.store, this.secret, "dev");
    await this.keyring.start();
    this.catalogue = await ToolCatalogue.open(this.store);
    this.catalogue.observe(SERVER, TOOLS);
    this.listed.observe(SERVER, TOOLS);
    const policy = compilePolicy([{ path: "test.yaml", text: POLICY }]);
    const faulty: CompiledPolicy = {
      version: policy.version,
      ruleCount: policy.ruleCount,
      sources: policy.sources,
      decide: () => {
        throw new Error("policy engine fault");
      },
      effect: (input) => policy.effect(input),
      explain: (input) => policy.explain(input),
    };
    const log = pino({ level: "silent" });
    if (this.opts.reviewGate) {
      this.review = new ReviewGate({
        store: this.store,
        config: this.config.review,
        environment: "dev",
        secret: this.secret,
        log,
        record: (entry) => this.audit.record(entry),
        baseUrl: () => this.url,
        webhookSecret: null,
      });
    }
    const route: Route = {
      upstream: this.upstream,
      anonymous: false,
      scopes: this.opts.routeScopes ?? [],
      toolScopes: this.opts.toolScopes ?? {},
    };
    this.pipeline = new Pipeline({
      environment: "dev",
      bearers: { task: null, jwtSvid: null },
      routes: new Map([
        [SERVER, route],
        [OTHER, { ...route, upstream: new FakeUpstream() }],
      ]),
      authorization: {
        policy: () => (this.policyFault ? faulty : policy),
        tools: this.catalogue,
        observeTools: (server, tools) => this.catalogue.observe(server, tools),
        blocked: (_server, tool) => this.blocked.has(tool),
      },
      keyring: this.keyring,
      audit: this.audit,
      metrics: createMetrics([SERVER]),
      log,
      oauth: {
        verifier: new FakeTokenVerifier(this.oauthToken, this.opts.oauthScopes ?? ["mcp"]),
        authorizationServers: [],
        server: null,
      },
      oauthEnabled: true,
      baseUrl: () => this.url,
      hostCheck: (headers) =>
        headers.host?.startsWith("127.0.0.1:") ? null : `Host '${headers.host}' is not an allowed host`,
      limits: new CallerLimits({
        callsInFlightPerCaller: this.opts.callsInFlightPerCaller ?? 4,
        streamsPerCaller: 2,
        streamsPerSession: 1,
        retryAfterSeconds: 1,
      }),
      listedTools: this.listed,
      review: this.review,
    });
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const server = decodeURIComponent((req.url ?? "").replace(/^\/mcp\//, ""));
        const method = req.method === "GET" || req.method === "DELETE" ? req.method : "POST";
        void this.pipeline.handle(
          method,
          server,
          req.headers,
          method === "POST" ? Buffer.concat(chunks).toString("utf8") : null,
          req.socket.remoteAddress ?? null,
          res,
        );
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.upstream.releaseSlow();
    await new Promise<void>((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
    await this.catalogue?.close();
    await this.keyring?.close();
    await this.store?.close().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Issues a live API key; `scopes` like ["demo"] or ["demo:echo"]. */
  async key(name: string, scopes: string[] = [SERVER]): Promise<string> {
    const { key } = await issueKey(this.store, this.secret, this.config, { name, scopes, expires: "30d" });
    return key;
  }

  /** POSTs one JSON-RPC message (object or raw text) to /mcp/<server>. */
  async post(
    credential: string | null,
    message: unknown,
    headers: IncomingHttpHeaders = {},
    server = SERVER,
  ): Promise<Reply> {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (credential !== null) h.authorization = `Bearer ${credential}`;
    for (const [k, v] of Object.entries(headers)) if (typeof v === "string") h[k] = v;
    const res = await fetch(`${this.url}/mcp/${server}`, {
      method: "POST",
      headers: h,
      body: typeof message === "string" ? message : JSON.stringify(message),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      json: text ? (JSON.parse(text) as Reply["json"]) : {},
    };
  }
}

let nextId = 1;

/** A 2025-x (legacy) request: no mirrored headers needed. */
export function request(method: string, params: Record<string, unknown> = {}): Record<string, unknown> {
  return { jsonrpc: "2.0", id: nextId++, method, params };
}

export function toolCall(name: string, args: Record<string, unknown> = {}): Record<string, unknown> {
  return request("tools/call", { name, arguments: args });
}
