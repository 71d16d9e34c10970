/**
 * The typed configuration of a gateway instance (portcullis.yaml), with every default in
 * one place. Unknown keys are rejected; alternatives are discriminated unions.
 * Reference: docs/configuration.md.
 */
import { z } from "zod";
import { DEFAULT_ABUSE_LIMITS } from "./abuseLimits.js";

/** A secret is never written inline: it is read from an environment variable or a file. */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof SecretRef>;

/** Environment names appear inside key strings, so they are short lowercase words. */
const ScopeName = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "an OAuth scope token (RFC 6749 §3.3)");

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

/** A SPIFFE trust domain name (SPIFFE ID §2.1): lower-case letters, digits, '.', '-', '_'. */
const TrustDomainName = z
  .string()
  .regex(
    /^[a-z0-9._-]{1,255}$/,
    "a trust domain name: lower-case letters, digits, '.', '-', '_' (no scheme, no port)",
  );

/**
 * Outbound SPIFFE mutual TLS to an https upstream (docs/workload-identity.md): the gateway
 * presents its own X.509-SVID (PEM files written by a SPIFFE helper, reloaded when they
 * change) and accepts the upstream only if its certificate chains to the trust domain's X.509
 * authorities and its one URI SAN is exactly `spiffe.id` (instead of a host name check).
 */
const UpstreamSpiffeTls = z.strictObject({
  spiffe: z.strictObject({
    /** The SPIFFE ID the upstream must present. */
    id: z.string().startsWith("spiffe://", "a SPIFFE ID, spiffe://<trust domain>/<path>"),
    /** The trust domain whose X.509 authorities verify the upstream (default: the ID's own). */
    trustDomain: TrustDomainName.optional(),
  }),
  svid: z.strictObject({
    /** PEM file: the gateway's X.509-SVID leaf, then any intermediates. */
    cert: z.string().min(1),
    /** PEM file: the SVID's private key. */
    key: z.string().min(1),
    /** PEM file of X.509 authorities (a SPIFFE helper's bundle); default: spiffe.trustDomains' bundle. */
    bundle: z.string().min(1).optional(),
  }),
});
export type UpstreamSpiffeTlsConfig = z.infer<typeof UpstreamSpiffeTls>;

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

/**
 * OAuth 2.1 resource server trusting an external authorization server (external-IdP mode):
 * JWT access tokens checked against its JWKS, or opaque tokens through introspection.
 */
const ExternalOAuth = z.strictObject({
  mode: z.literal("external"),
  issuer: z.url(),
  /** Default: jwks_uri from the issuer's metadata. */
  jwksUri: z.url().optional(),
  algorithms: z
    .array(z.enum(["RS256", "PS256", "ES256", "ES384", "EdDSA"]))
    .default(["RS256", "PS256", "ES256", "EdDSA"]),
  clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
  /** Claims every token must carry. */
  requiredClaims: z.array(z.string()).default(["sub", "exp"]),
  /** Where the token's scopes are: `scope` (space-separated, RFC 9068) or `scp` (array, Entra ID). */
  scopeClaim: z.enum(["scope", "scp"]).default("scope"),
  /** RFC 7662 introspection for opaque tokens. */
  introspection: z
    .strictObject({
      url: z.url(),
      clientId: z.string().min(1),
      clientSecret: SecretRef,
      /** Upper bound of how long an introspection answer is reused (never past the token's exp). */
      cacheSeconds: z.number().int().min(0).max(3600).default(60),
    })
    .optional(),
  /** Largest number of verified tokens kept in memory. */
  cacheSize: z.number().int().positive().default(10_000),
});
export type ExternalOAuthConfig = z.infer<typeof ExternalOAuth>;

/**
 * User sign-in delegated to an upstream OpenID Provider found by its issuer (OpenID Connect
 * Discovery 1.0): Entra ID, Okta, Keycloak, Google, Auth0. Register Portcullis there as a
 * confidential web client with redirect URI `<publicUrl>/oauth/callback`.
 */
const UpstreamLogin = z.strictObject({
  /** Shown on the sign-in page as "Sign in with <name>". Default: the issuer's host. */
  name: z.string().min(1).max(64).optional(),
  /** Issuer identifier; `<issuer>/.well-known/openid-configuration` is fetched at startup. */
  issuer: z.url(),
  clientId: z.string().min(1),
  clientSecret: SecretRef,
  scopes: z
    .array(ScopeName)
    .refine((s) => s.includes("openid"), "must include openid")
    .default(["openid", "email", "profile"]),
  /** ID token claims holding the user id, email and groups. */
  claims: z
    .strictObject({
      userId: z.string().min(1).default("sub"),
      email: z.string().min(1).default("email"),
      groups: z.string().min(1).default("groups"),
    })
    .prefault({}),
  /** Accept a plain-http issuer (a dev IdP on loopback). Refused outside the dev environment. */
  allowInsecureHttp: z.boolean().default(false),
});

const Login = z.strictObject({
  upstream: UpstreamLogin.optional(),
  /** Password sign-in with local users. Default: on without `upstream`, off with it. */
  localUsers: z.boolean().optional(),
});

/**
 * An enterprise identity provider whose Identity Assertion JWT Authorization Grants (ID-JAG,
 * draft-ietf-oauth-identity-assertion-authz-grant; MCP "Enterprise-Managed Authorization")
 * the built-in authorization server redeems with the RFC 7523 jwt-bearer grant.
 */
const EnterpriseIdp = z.strictObject({
  /** The IdP's issuer identifier: an ID-JAG's `iss` must equal it exactly. */
  issuer: z.url(),
  /** The IdP's JWK Set. Default: `jwks_uri` from its RFC 8414 / OpenID Connect metadata. */
  jwksUri: z.url().optional(),
  /**
   * Machine clients (`portcullis clients create`) that may redeem this IdP's ID-JAGs, by
   * client id. Absent: every machine client.
   */
  clients: z
    .array(z.string().regex(/^mc_[A-Za-z0-9_-]{22}$/, "a machine client id (mc_…)"))
    .min(1)
    .optional(),
  /** Signature algorithms accepted (allow-list; `none` and HMAC never). */
  algorithms: z
    .array(z.enum(["RS256", "PS256", "ES256", "ES384", "EdDSA"]))
    .min(1)
    .default(["RS256", "PS256", "ES256", "EdDSA"]),
});

const Enterprise = z.strictObject({
  idps: z
    .array(EnterpriseIdp)
    .min(1)
    .refine(
      (idps) => new Set(idps.map((i) => i.issuer)).size === idps.length,
      "each issuer may be listed once",
    ),
  /** Longest ID-JAG lifetime accepted (`exp` − `iat`), in seconds. */
  maxAssertionLifetimeSeconds: z.number().int().min(30).max(3600).default(600),
});
export type EnterpriseAuthorizationConfig = z.infer<typeof Enterprise>;

/**
 * The built-in OAuth 2.1 authorization server (on oidc-provider), the issuer being the
 * gateway's own base URL: MCP clients register themselves (CIMD or DCR) and users sign in
 * with local accounts (`portcullis users add`) or through an upstream OpenID Provider.
 */
const BuiltinOAuth = z.strictObject({
  mode: z.literal("builtin"),
  login: Login.optional(),
  accessTokenTtlSeconds: z.number().int().min(30).max(3600).default(300),
  /** Enterprise-managed authorization: ID-JAGs from these IdPs are redeemed (jwt-bearer grant). */
  enterprise: Enterprise.optional(),
  refreshTokenTtlSeconds: z
    .number()
    .int()
    .min(60)
    .default(14 * 86_400),
  /** Bounds on self-registered clients (RFC 7591 §5: open registration must not exhaust the store). */
  registration: z
    .strictObject({
      /** Most redirect URIs one client (DCR or metadata document) may register. */
      maxRedirectUris: z.number().int().min(1).max(100).default(10),
      /** A dynamically registered client unused for this many days is deleted (it registers again). */
      unusedClientDays: z.number().positive().default(90),
    })
    .prefault({}),
  /**
   * Online password guessing and registration floods (RFC 6819 §4.4.3.6, RFC 7591 §5): counted
   * in PostgreSQL (shared by every replica) when the store is PostgreSQL, else in memory.
   */
  limits: z
    .strictObject({
      /** Failed sign-ins allowed per username and source address in the window. */
      signInFailuresPerUser: z.number().int().positive().default(DEFAULT_ABUSE_LIMITS.signInFailuresPerUser),
      /** Failed sign-ins allowed per source address, any username, in the window. */
      signInFailuresPerAddress: z
        .number()
        .int()
        .positive()
        .default(DEFAULT_ABUSE_LIMITS.signInFailuresPerAddress),
      /** Failed sign-ins on one account, from any address, before its backoff starts. */
      signInFailuresPerAccount: z
        .number()
        .int()
        .positive()
        .default(DEFAULT_ABUSE_LIMITS.signInFailuresPerAccount),
      /** The account's first backoff in seconds; it doubles with each further failure … */
      accountBackoffSeconds: z.number().int().positive().default(DEFAULT_ABUSE_LIMITS.accountBackoffSeconds),
      /** … up to this many seconds: the longest a user waits after guessing on their account stops. */
      accountBackoffMaxSeconds: z
        .number()
        .int()
        .positive()
        .default(DEFAULT_ABUSE_LIMITS.accountBackoffMaxSeconds),
      /** Client registrations (POST /reg) allowed per source address per minute. */
      registrationsPerMinute: z
        .number()
        .int()
        .positive()
        .default(DEFAULT_ABUSE_LIMITS.registrationsPerMinute),
      windowSeconds: z.number().int().positive().default(DEFAULT_ABUSE_LIMITS.windowSeconds),
    })
    .prefault({}),
});
export type BuiltinOAuthConfig = z.infer<typeof BuiltinOAuth>;

/**
 * SPIFFE workload identity (docs/workload-identity.md): the trust domains whose workloads may
 * call, each with its trust bundle (SPIFFE bundle format) from a file (reloaded when it
 * changes) or a bundle endpoint (`https_web` profile). JWT-SVIDs are then accepted as bearer
 * tokens, and X.509-SVIDs as client certificates when `listen.tls.clientAuth` asks for them.
 */
const Spiffe = z.strictObject({
  trustDomains: z
    .array(
      z.strictObject({
        name: TrustDomainName,
        bundle: z.union([
          z.strictObject({ file: z.string().min(1) }),
          z.strictObject({
            /** https (plain http only to 127.0.0.1 / [::1] in the dev environment). */
            endpoint: z.url({ protocol: /^https?$/ }),
            refreshSeconds: z.number().int().min(5).max(86_400).default(300),
          }),
        ]),
      }),
    )
    .min(1, "list at least one trust domain")
    .refine((tds) => new Set(tds.map((t) => t.name)).size === tds.length, "a trust domain is listed twice"),
  jwtSvid: z
    .strictObject({
      /** Asymmetric algorithms only (JWT-SVID §3): HS* and none are never accepted. */
      algorithms: z
        .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]))
        .min(1)
        .default(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]),
      clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
      /** Largest number of verified JWT-SVIDs kept in memory (each until its exp). */
      cacheSize: z.number().int().positive().default(10_000),
    })
    .prefault({}),
});
export type SpiffeConfig = z.infer<typeof Spiffe>;

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
