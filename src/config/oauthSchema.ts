/**
 * The OAuth parts of the configuration (`oauth:`): an external authorization server whose
 * tokens the gateway verifies, or the built-in authorization server with its sign-in,
 * registration, abuse limits and enterprise IdPs. Part of the one schema in ./schema.ts.
 */
import { z } from "zod";
import { DEFAULT_ABUSE_LIMITS } from "./abuseLimits.js";
import { ScopeName, SecretRef } from "./secretRef.js";

/**
 * OAuth 2.1 resource server trusting an external authorization server (external-IdP mode):
 * JWT access tokens checked against its JWKS, or opaque tokens through introspection.
 */
export const ExternalOAuth = z.strictObject({
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
export const BuiltinOAuth = z.strictObject({
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
