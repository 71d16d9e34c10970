/**
 * OAuth 2.1 access tokens from an external authorization server (MCP authorization,
 * "Access Token Usage" and "Token Audience Binding and Validation"):
 * - JWT access tokens (RFC 9068) verified with jose against the issuer's JWKS: algorithm
 *   allow-list, `iss`, `aud` = this exact resource, `exp`/`nbf` with a small leeway,
 *   required claims; unknown `kid`s refetch the key set at most once per cooldown;
 * - opaque tokens through RFC 7662 introspection.
 * A verified token is cached under a hash of the token until it expires (introspection
 * answers no longer than `cacheSeconds`), so the steady-state cost is one SHA-256 and one
 * map lookup.
 */
import { createHash } from "node:crypto";
import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from "jose";
import { readSecret } from "../config/load.js";
import type { Config, ExternalOAuthConfig } from "../config/schema.js";
import type { Principal } from "../core/principal.js";
import { compileScopes } from "../core/scope.js";

/**
 * A refusal is either a judgement (the token is invalid, expired, revoked: 401) or, with
 * `unavailable`, the admission that the state needed to judge it cannot be read now (the
 * store is unreachable): the request is refused 503 and the client keeps its token.
 */
export type TokenCheck =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      reason: string;
      credentialId: string | null;
      unavailable?: true;
      /** Facts for the refusal's audit record (a task token's task id and actor). */
      detail?: Record<string, unknown>;
    };

/** Anything that turns a bearer access token into a principal for one resource. */
export interface AccessTokenVerifier {
  verify(token: string, resource: string): TokenCheck | Promise<TokenCheck>;
}

/**
 * The OAuth side of a running gateway, complete before the listener is built: the built-in
 * authorization server's issuer is the public base URL, known once the port is bound
 * (src/listener/startup.ts), so nothing here changes once requests are served.
 */
export interface OAuthRuntime {
  readonly verifier: AccessTokenVerifier | null;
  /** Issuers advertised in protected resource metadata. */
  readonly authorizationServers: readonly string[];
  /** The built-in authorization server, whose routes the listener hands over unparsed. */
  readonly server: {
    owns(pathname: string): boolean;
    handle(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse): void;
  } | null;
}

/** The built-in authorization server as the listener and the verifier see it. */
export interface BuiltinIssuer extends NonNullable<OAuthRuntime["server"]> {
  /** Its verifier of the access tokens it issues. */
  readonly tokenVerifier: AccessTokenVerifier;
}

/**
 * The OAuth runtime for `oauth:` in the config: none (OAuth tokens refused), an external
 * issuer (tokens verified by {@link OAuthTokenVerifier}), or the built-in server at `issuer`.
 */
export function oauthRuntime(
  oauth: Config["oauth"],
  environment: string,
  builtin: { server: BuiltinIssuer; issuer: string } | null,
): OAuthRuntime {
  if (oauth?.mode === "external") {
    const { introspection } = oauth;
    const secret = introspection
      ? readSecret(introspection.clientSecret, "oauth.introspection.clientSecret")
      : null;
    return {
      verifier: new OAuthTokenVerifier(oauth, environment, secret),
      authorizationServers: [oauth.issuer],
      server: null,
    };
  }
  if (builtin === null) return { verifier: null, authorizationServers: [], server: null };
  const { server } = builtin;
  return {
    verifier: server.tokenVerifier,
    authorizationServers: [builtin.issuer],
    server,
  };
}

interface CachedToken {
  principal: Principal;
  /** Resources (audiences) the token was issued for. */
  audiences: readonly string[];
  /** Epoch ms after which the entry must not be used. */
  until: number;
}

const ALL_SERVERS = compileScopes(["*"]);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * The `AccessTokenVerifier` for an external authorization server's tokens (the built-in
 * authorization server's is `BuiltinTokenVerifier` in src/oauth/builtinTokenVerifier.ts).
 */
export class OAuthTokenVerifier implements AccessTokenVerifier {
  private cache = new Map<string, CachedToken>();
  private jwks: ReturnType<typeof createRemoteJWKSet> | null = null;
  private jwksUri: Promise<URL> | null = null;

  constructor(
    private readonly config: ExternalOAuthConfig,
    private readonly environment: string,
    /** Client secret for introspection, resolved at startup. */
    private readonly introspectionSecret: string | null,
  ) {}

  /** Synchronous in the steady state (cache hit); a promise only on a miss. */
  verify(token: string, resource: string, now: number = Date.now()): TokenCheck | Promise<TokenCheck> {
    const key = createHash("sha256").update(token).digest("base64url");
    const hit = this.cache.get(key);
    if (hit && hit.until > now) {
      if (!hit.audiences.includes(resource)) {
        return {
          ok: false,
          reason: `token audience ${JSON.stringify(hit.audiences)} is not this resource`,
          credentialId: hit.principal.credentialId,
        };
      }
      return { ok: true, principal: hit.principal };
    }
    if (hit) this.cache.delete(key);
    return this.verifyUncached(token, resource).then((result) => {
      if ("cache" in result) {
        this.remember(key, result.cache);
        if (!result.cache.audiences.includes(resource)) {
          return {
            ok: false,
            reason: `token audience ${JSON.stringify(result.cache.audiences)} is not this resource`,
            credentialId: result.cache.principal.credentialId,
          };
        }
        return { ok: true, principal: result.cache.principal };
      }
      return result;
    });
  }

  private remember(key: string, entry: CachedToken): void {
    if (this.cache.size >= this.config.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
  }

  private async verifyUncached(
    token: string,
    resource: string,
  ): Promise<TokenCheck | { cache: CachedToken }> {
    if (JWT_SHAPE.test(token)) return this.verifyJwt(token, resource);
    if (this.config.introspection) return this.introspect(token);
    return {
      ok: false,
      reason: "token is not a JWT and no introspection endpoint is configured",
      credentialId: null,
    };
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    if (!this.jwksUri) {
      this.jwksUri = this.config.jwksUri
        ? Promise.resolve(new URL(this.config.jwksUri))
        : discoverJwksUri(this.config.issuer);
      this.jwksUri.catch(() => {
        this.jwksUri = null;
      });
    }
    this.jwks = createRemoteJWKSet(await this.jwksUri, {
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 5_000,
    });
    return this.jwks;
  }

  private async verifyJwt(token: string, resource: string): Promise<TokenCheck | { cache: CachedToken }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.keySet(), {
        issuer: this.config.issuer,
        audience: resource,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockToleranceSeconds,
        requiredClaims: this.config.requiredClaims,
      }));
    } catch (err) {
      return { ok: false, reason: `JWT rejected: ${describeJoseError(err)}`, credentialId: null };
    }
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud as string];
    return {
      cache: { principal: this.principalOf(payload), audiences, until: (payload.exp as number) * 1000 },
    };
  }

  private async introspect(token: string): Promise<TokenCheck | { cache: CachedToken }> {
    const cfg = this.config.introspection;
    if (!cfg || this.introspectionSecret === null)
      return { ok: false, reason: "introspection not configured", credentialId: null };
    let body: Record<string, unknown>;
    try {
      const basic = Buffer.from(
        `${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(this.introspectionSecret)}`,
      ).toString("base64");
      const res = await fetch(cfg.url, {
        method: "POST",
        headers: {
          authorization: `Basic ${basic}`,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
        },
        body: new URLSearchParams({ token }).toString(),
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status !== 200)
        return { ok: false, reason: `introspection answered HTTP ${res.status}`, credentialId: null };
      body = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      return { ok: false, reason: `introspection failed: ${(err as Error).message}`, credentialId: null };
    }
    if (body.active !== true)
      return { ok: false, reason: "introspection: token is not active", credentialId: null };
    if (body.iss !== undefined && body.iss !== this.config.issuer) {
      return {
        ok: false,
        reason: `introspection: issuer ${String(body.iss)} is not trusted`,
        credentialId: null,
      };
    }
    if (typeof body.exp !== "number")
      return { ok: false, reason: "introspection: no exp", credentialId: null };
    const audiences = Array.isArray(body.aud)
      ? (body.aud as string[])
      : typeof body.aud === "string"
        ? [body.aud]
        : [];
    const until = Math.min(body.exp * 1000, Date.now() + cfg.cacheSeconds * 1000);
    return { cache: { principal: this.principalOf(body as JWTPayload), audiences, until } };
  }

  private principalOf(claims: JWTPayload & Record<string, unknown>): Principal {
    const sub = String(claims.sub);
    const clientId =
      typeof claims.client_id === "string"
        ? claims.client_id
        : typeof claims.azp === "string"
          ? claims.azp
          : null;
    const raw = claims[this.config.scopeClaim];
    const scopes = Array.isArray(raw)
      ? raw.map(String)
      : typeof raw === "string"
        ? raw.split(" ").filter(Boolean)
        : [];
    const groups = Array.isArray(claims.groups) ? claims.groups.map(String) : [];
    return {
      id: `oauth:${this.config.issuer}#${sub}`,
      // client_credentials tokens are about the client itself (RFC 9068 §2.2: sub = client_id).
      kind: clientId !== null && clientId === sub ? "service" : "user",
      method: "oauth",
      name: typeof claims.email === "string" ? claims.email : sub,
      environment: this.environment,
      credentialId: typeof claims.jti === "string" ? claims.jti : null,
      scopes: ALL_SERVERS,
      oauthScopes: new Set(scopes),
      groups,
      issuedAt: typeof claims.iat === "number" ? new Date(claims.iat * 1000) : null,
      expiresAt: typeof claims.exp === "number" ? new Date(claims.exp * 1000) : null,
    };
  }
}

async function discoverJwksUri(issuer: string): Promise<URL> {
  const base = issuer.replace(/\/$/, "");
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) continue;
      const meta = (await res.json()) as { issuer?: string; jwks_uri?: string };
      if (meta.issuer !== issuer) throw new Error(`metadata issuer ${meta.issuer} does not match ${issuer}`);
      if (meta.jwks_uri) return new URL(meta.jwks_uri);
    } catch (err) {
      if ((err as Error).message.startsWith("metadata issuer")) throw err;
    }
  }
  throw new Error(`no jwks_uri found in ${issuer}'s metadata`);
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `claim ${err.claim} ${err.reason}: ${err.message}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key in the issuer's JWKS matches (unknown kid)";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature verification failed";
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
