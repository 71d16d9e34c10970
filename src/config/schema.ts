/**
 * The typed configuration of a gateway instance (portcullis.yaml), with every default in
 * one place. Unknown keys are rejected; alternatives are discriminated unions.
 * Reference: docs/configuration.md.
 */
import { z } from "zod";
import { BuiltinOAuth, ExternalOAuth } from "./oauthSchema.js";
import { ScopeName, SecretRef } from "./secretRef.js";
import { Spiffe, UpstreamSpiffeTls } from "./spiffeSchema.js";

export type {
  BuiltinOAuthConfig,
  EnterpriseAuthorizationConfig,
  ExternalOAuthConfig,
} from "./oauthSchema.js";
export { SecretRef } from "./secretRef.js";
export type { SpiffeConfig, UpstreamSpiffeTlsConfig } from "./spiffeSchema.js";

/** Environment names appear inside key strings, so they are short lowercase words. */
export const EnvironmentName = z
  .string()
  .regex(/^[a-z][a-z0-9]{0,15}$/, "must be a lowercase word of 1-16 letters/digits, e.g. dev, test, prod");

const ServerName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    "server names are lowercase letters, digits and '-' (used in /mcp/<name>)",
  );

/**
 * OAuth scopes a server requires (MCP authorization, "Scope Challenge Handling"): `scopes`
 * for any request, `tools.<name>` additionally for that tool. Scopes are ':'-separated
 * paths and a broader scope implies narrower ones (`mcp` ⊇ `mcp:tools` ⊇ `mcp:tools:write`).
 */
const ServerScopes = z
  .strictObject({
    scopes: z.array(ScopeName).default(["mcp"]),
    tools: z.record(z.string(), z.array(ScopeName)).default({}),
  })
  .prefault({});

/**
 * Operator pins for tools whose annotations are missing or not to be trusted (annotations
 * come from the server): the risk tier and open-world flag policy sees for that tool.
 */
const ToolPins = z
  .record(
    z.string().min(1),
    z.strictObject({
      tier: z.enum(["read", "write", "destructive"]),
      openWorld: z.boolean().optional(),
    }),
  )
  .default({});

const StdioServer = z.strictObject({
  transport: z.literal("stdio"),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Plain values for ordinary settings; secrets via { env } or { file }. */
  env: z.record(z.string(), z.union([z.string(), SecretRef])).default({}),
  cwd: z.string().optional(),
  /** per-caller: one child process per caller identity (default); shared: one for everyone. */
  isolation: z.enum(["per-caller", "shared"]).default("per-caller"),
  idleTimeoutSeconds: z.number().int().positive().default(600),
  /** How long one call may take before the client gets a 504. */
  timeoutMs: z.number().int().positive().default(60_000),
  /** Upper bound of child processes for this server (one per caller). */
  maxProcesses: z.number().int().positive().default(64),
  /** Explicit anonymous access (no credential). Refused at startup in a prod environment. */
  anonymous: z.boolean().default(false),
  oauth: ServerScopes,
  tools: ToolPins,
});

const HttpServer = z.strictObject({
  transport: z.literal("http"),
  url: z.url({ protocol: /^https?$/ }),
  /** Header values always come from secrets; the client's own credential is never forwarded. */
  headers: z.record(z.string(), SecretRef).default({}),
  timeoutMs: z.number().int().positive().default(60_000),
  connectTimeoutMs: z.number().int().positive().default(5_000),
  connections: z.number().int().positive().default(128),
  /** Largest JSON response body accepted from the server; a larger or non-JSON one is a 502. */
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /** SPIFFE mutual TLS to the upstream (an https url). */
  tls: UpstreamSpiffeTls.optional(),
  anonymous: z.boolean().default(false),
  oauth: ServerScopes,
  tools: ToolPins,
});

export const UpstreamServer = z.discriminatedUnion("transport", [StdioServer, HttpServer]);
export type UpstreamServer = z.infer<typeof UpstreamServer>;
export type StdioServerConfig = z.infer<typeof StdioServer>;
export type HttpServerConfig = z.infer<typeof HttpServer>;

export const Config = z.strictObject({
  environment: EnvironmentName.default("dev"),
  listen: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(8080),
      /**
       * Host names clients may use (Host and Origin checks against DNS rebinding). Default:
       * loopback names when listening on loopback, plus the publicUrl host.
       */
      allowedHosts: z.array(z.string().min(1)).optional(),
      /**
       * Serve HTTPS (plain HTTP without it). `clientAuth`: whether clients are asked for an
       * X.509-SVID (`request`: optional; `require`: the TLS handshake fails without one);
       * needs `spiffe` for the trust bundles that verify it.
       */
      tls: z
        .strictObject({
          cert: SecretRef,
          key: SecretRef,
          clientAuth: z.enum(["none", "request", "require"]).default("none"),
        })
        .optional(),
    })
    .prefault({}),
  /** Public base URL clients use (e.g. https://mcp.example.com); defaults to the listen address. */
  publicUrl: z.url().optional(),
  /** Directory for the embedded SQLite store and generated secrets. */
  dataDir: z.string().default(".portcullis"),
  /** `sqlite` (file in dataDir), a SQLite file path, or a postgres:// URL. */
  store: z.string().default("sqlite"),
  /** HMAC key for API key hashes. Generated into dataDir on first start when absent. */
  serverSecret: SecretRef.optional(),
  limits: z
    .strictObject({
      bodyBytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      /** Time a client has to send its whole request (slow or stalled clients get 408). */
      requestTimeoutMs: z.number().int().positive().default(30_000),
      keepAliveTimeoutMs: z.number().int().positive().default(72_000),
      /**
       * Per-caller caps (429 with Retry-After when reached), counted in each replica: calls
       * one caller may have in flight on one server (keep it below an HTTP server's
       * `connections`, so one caller cannot take the whole pool), and 2025-x GET streams one
       * caller, and one session, may hold open.
       */
      callsInFlightPerCaller: z.number().int().positive().default(32),
      streamsPerCaller: z.number().int().positive().default(16),
      streamsPerSession: z.number().int().positive().default(2),
      /** 2025-x sessions one caller may hold; opening one more ends its own oldest session. */
      sessionsPerCaller: z.number().int().positive().default(64),
      /** Retry-After (seconds) sent with a 429 for a concurrency cap. */
      retryAfterSeconds: z.number().int().positive().default(1),
    })
    .prefault({}),
  keys: z
    .strictObject({
      defaultTtlDays: z.number().positive().default(90),
      maxTtlDays: z.number().positive().default(365),
      /** How long the old key of a rotation stays valid. */
      rotationOverlapSeconds: z.number().int().min(0).default(86_400),
    })
    .prefault({}),
  audit: z
    .strictObject({
      flushIntervalMs: z.number().int().positive().default(50),
      maxBatch: z.number().int().positive().default(1000),
      /**
       * Records waiting for the store, at most (a store outage): past it, requests are refused
       * 503 before any work, uncounted in the trail until one record says how many there were.
       */
      maxPendingRecords: z.number().int().positive().default(100_000),
      /** A signed checkpoint (docs/audit.md) after this many records of a chain … */
      checkpointEvery: z.number().int().positive().default(1000),
      /** … or this many seconds after the previous one, whichever comes first. */
      checkpointIntervalSeconds: z.number().int().positive().default(60),
      /** Purge records older than this many days, by whole checkpointed ranges. Unset: keep forever. */
      retentionDays: z.number().int().positive().optional(),
      /** How a call's arguments are kept: as sent, secrets masked and large values hashed, a hash, or not at all. */
      arguments: z.enum(["full", "redacted", "hashed", "none"]).default("redacted"),
      /** Limits of the `redacted` form: longer strings, larger or deeper nested values are replaced by their SHA-256. */
      redaction: z
        .strictObject({
          maxStringLength: z.number().int().positive().default(256),
          maxValueBytes: z.number().int().positive().default(4096),
          maxDepth: z.number().int().positive().default(8),
        })
        .prefault({}),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .prefault({}),
  /**
   * Policy-as-code decided on every request (docs/policy.md). `paths`: policy files or
   * directories; absent = the built-in default pack (policies/default), which the operator can
   * copy and edit.
   */
  policy: z
    .strictObject({
      paths: z.array(z.string().min(1)).min(1).optional(),
    })
    .prefault({}),
  /**
   * Tool pinning: the hash of every tool definition is recorded the first time it is seen.
   * When a server changes a tool: `flag` records it in the audit log; `block` also refuses the
   * tool until an operator runs `portcullis tools accept`.
   */
  pinning: z
    .strictObject({
      onChange: z.enum(["flag", "block"]).default("flag"),
    })
    .prefault({}),
  /**
   * Runtime review of calls policy decides `review` for (docs/review.md). A rule's own
   * `review.timeoutSeconds` wins over `defaultTimeoutSeconds`. `webhook`: where new approvals
   * are announced (JSON, signed with the secret), with signed approve/deny links valid for
   * `linkLifetimeSeconds` (never past the approval's deadline).
   */
  review: z
    .strictObject({
      defaultTimeoutSeconds: z.number().int().min(1).max(86_400).default(300),
      /** Approvals one caller may have pending at once; one more is refused with 429 (no webhook). */
      maxPendingPerCaller: z.number().int().positive().default(10),
      /** How long a 2026-07-28 client's retry waits for a decision before hearing "still pending". */
      retryHoldSeconds: z.number().int().min(0).max(60).default(20),
      /** Progress notifications (2025-x clients holding the call open) every this many seconds. */
      progressIntervalSeconds: z.number().int().min(1).max(60).default(5),
      linkLifetimeSeconds: z
        .number()
        .int()
        .min(60)
        .max(7 * 86_400)
        .default(3600),
      webhook: z
        .strictObject({
          url: z.url({ protocol: /^https?$/ }),
          secret: SecretRef,
        })
        .optional(),
    })
    .prefault({}),
  /**
   * The admin web console at /console (docs/console.md). Sign-in goes through the built-in
   * authorization server, so it needs `oauth.mode: builtin`; `enabled` defaults to on exactly
   * then. Only users in one of `adminGroups` get in; a session lasts `sessionMinutes`.
   */
  console: z
    .strictObject({
      enabled: z.boolean().optional(),
      adminGroups: z.array(z.string().min(1)).min(1).default(["admins"]),
      sessionMinutes: z.number().int().min(1).max(720).default(30),
    })
    .prefault({}),
  /**
   * Tasks (docs/tasks.md): credentials that exist for one piece of work. A task lives
   * `defaultTtlSeconds` unless asked otherwise, never more than `maxTtlSeconds` (never
   * unbounded); a call budget, when asked for, is at most `maxBudget`; a purpose at most
   * `maxPurposeLength` characters. A task that is over is deleted after `retentionDays`.
   */
  tasks: z
    .strictObject({
      defaultTtlSeconds: z.number().int().min(30).max(86_400).default(900),
      maxTtlSeconds: z.number().int().min(30).max(86_400).default(3600),
      maxBudget: z.number().int().positive().max(1_000_000).default(10_000),
      maxPurposeLength: z.number().int().min(16).max(4096).default(500),
      /** Days a task that is over stays in the store (`tasks list --all`); its audit records stay. */
      retentionDays: z.number().int().min(1).max(3650).default(30),
    })
    .refine((t) => t.defaultTtlSeconds <= t.maxTtlSeconds, {
      message: "defaultTtlSeconds must not exceed maxTtlSeconds",
      path: ["defaultTtlSeconds"],
    })
    .prefault({}),
  /** OAuth for MCP clients: the built-in authorization server or an external one. Absent: API keys only. */
  oauth: z.discriminatedUnion("mode", [BuiltinOAuth, ExternalOAuth]).optional(),
  /** SPIFFE workload identity (JWT-SVID bearer tokens, X.509-SVID client certificates). */
  spiffe: Spiffe.optional(),
  servers: z.record(ServerName, UpstreamServer).default({}),
});
export type Config = z.infer<typeof Config>;
export type TasksConfig = Config["tasks"];
