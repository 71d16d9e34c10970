/**
 * JWT-SVIDs as bearer credentials (spiffe/spiffe standards/JWT-SVID.md):
 * - §2.1 `alg`: asymmetric only (RS*, PS*, ES*; never HS* or none), from the configured list;
 * - §2.2 `kid` required, and found among the `jwt-svid` keys of the bundle of the trust
 *   domain named in `sub` (a token of trust domain A signed with B's key is refused);
 * - §2.3 `typ`, when present, is `JWT` or `JOSE`;
 * - §3 `sub` is a SPIFFE ID of a configured trust domain; `aud` present and containing this
 *   resource (RFC 8707: the endpoint's URL); `exp` present and not passed.
 * A verified token is cached under its SHA-256 until `exp`, so the steady state is one hash and
 * one map lookup; a bundle rotation that removed the signing key ends the cached entry (the
 * entry remembers the key, and is re-checked once per change of the bundle).
 */
import { createHash, type KeyObject } from "node:crypto";
import { decodeProtectedHeader, type JWTPayload, errors as joseErrors, jwtVerify } from "jose";
import type { SpiffeConfig } from "../../config/schema.js";
import type { Principal } from "../../core/principal.js";
import { compileScopes } from "../../core/scope.js";
import type { AccessTokenVerifier, TokenCheck } from "../oauthToken.js";
import { isSpiffeId, parseSpiffeId } from "./spiffeId.js";
import type { TrustBundles, TrustDomainBundle } from "./trustBundle.js";

const ALL_SERVERS = compileScopes(["*"]);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface CachedSvid {
  principal: Principal;
  audiences: readonly string[];
  until: number;
  bundle: TrustDomainBundle;
  /** The bundle generation the signing key was last seen in. */
  generation: number;
  kid: string;
  key: KeyObject;
}

type Judged = { ok: false; reason: string; credentialId: string | null } | { cache: CachedSvid };

export class JwtSvidVerifier implements AccessTokenVerifier {
  private readonly cache = new Map<string, CachedSvid>();
  private readonly algorithms: ReadonlySet<string>;

  constructor(
    private readonly bundles: TrustBundles,
    private readonly config: SpiffeConfig["jwtSvid"],
    private readonly environment: string,
  ) {
    this.algorithms = new Set(config.algorithms);
  }

  /** Synchronous on a cache hit; a promise only when the signature must be checked. */
  verify(token: string, resource: string, now: number = Date.now()): TokenCheck | Promise<TokenCheck> {
    const hash = createHash("sha256").update(token).digest("base64url");
    const hit = this.cache.get(hash);
    if (hit !== undefined) {
      if (hit.until > now && this.keyStillTrusted(hit)) return admit(hit, resource);
      this.cache.delete(hash);
      if (hit.until <= now)
        return { ok: false, reason: "JWT-SVID expired", credentialId: hit.principal.credentialId };
      // The signing key left the bundle: judged afresh below (and refused).
    }
    return this.judge(token, hash).then((result) => {
      if (!("cache" in result)) return result;
      this.remember(hash, result.cache);
      return admit(result.cache, resource);
    });
  }

  /** True while the entry's signing key is still in its trust domain's bundle. */
  private keyStillTrusted(entry: CachedSvid): boolean {
    if (entry.bundle.generation === entry.generation) return true;
    const now = entry.bundle.current?.jwtAuthorities.get(entry.kid);
    if (now === undefined || !now.key.equals(entry.key)) return false;
    entry.generation = entry.bundle.generation;
    return true;
  }

  private remember(hash: string, entry: CachedSvid): void {
    if (this.cache.size >= this.config.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(hash, entry);
  }

  private async judge(token: string, hash: string): Promise<Judged> {
    const credentialId = `jwt-svid:${hash.slice(0, 22)}`;
    const refuse = (reason: string): Judged => ({
      ok: false,
      reason: `JWT-SVID refused: ${reason}`,
      credentialId,
    });
    if (!JWT_SHAPE.test(token)) return refuse("not a compact JWS");
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token);
      const payload = token.split(".")[1] as string;
      claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
    } catch {
      return refuse("header or claims are not JSON");
    }
    if (typeof header.alg !== "string" || !this.algorithms.has(header.alg))
      return refuse(`algorithm ${JSON.stringify(header.alg)} is not allowed (asymmetric algorithms only)`);
    if (header.typ !== undefined && header.typ !== "JWT" && header.typ !== "JOSE")
      return refuse(`typ ${JSON.stringify(header.typ)} is not JWT or JOSE`);
    if (typeof header.kid !== "string" || header.kid === "") return refuse("no kid in the header");
    if (typeof claims.sub !== "string") return refuse("no sub");
    const id = parseSpiffeId(claims.sub);
    if (!isSpiffeId(id)) return refuse(`sub is not a SPIFFE ID: ${id.problem}`);
    const bundle = this.bundles.get(id.trustDomain);
    if (bundle === undefined) return refuse(`trust domain ${id.trustDomain} is not configured`);
    const current = bundle.current;
    if (current === null) return refuse(`no trust bundle loaded yet for ${id.trustDomain}`);
    const authority = current.jwtAuthorities.get(header.kid);
    if (authority === undefined)
      return refuse(
        `kid ${JSON.stringify(header.kid)} is not a jwt-svid key of trust domain ${id.trustDomain}`,
      );
    if (authority.alg !== null && authority.alg !== header.alg)
      return refuse(`the bundle's key ${header.kid} is for ${authority.alg}, not ${header.alg}`);
    const generation = bundle.generation;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, authority.key, {
        algorithms: [header.alg],
        clockTolerance: this.config.clockToleranceSeconds,
        requiredClaims: ["sub", "aud", "exp"],
      }));
    } catch (err) {
      return refuse(describeJoseError(err));
    }
    const audiences = typeof payload.aud === "string" ? [payload.aud] : (payload.aud ?? []);
    if (audiences.length === 0) return refuse("aud is empty");
    const exp = payload.exp as number;
    return {
      cache: {
        principal: {
          id: id.id,
          kind: "workload",
          method: "jwt_svid",
          name: id.id,
          environment: this.environment,
          credentialId: typeof payload.jti === "string" && payload.jti !== "" ? payload.jti : credentialId,
          // Every server: policy (match.workloads) decides what the workload may reach.
          scopes: ALL_SERVERS,
          oauthScopes: null,
          groups: [],
          issuedAt: typeof payload.iat === "number" ? new Date(payload.iat * 1000) : null,
          expiresAt: new Date(exp * 1000),
        },
        audiences,
        until: exp * 1000,
        bundle,
        generation,
        kid: authority.kid,
        key: authority.key,
      },
    };
  }
}

function admit(entry: CachedSvid, resource: string): TokenCheck {
  if (!entry.audiences.includes(resource))
    return {
      ok: false,
      reason: `JWT-SVID refused: audience ${JSON.stringify(entry.audiences)} does not contain this resource`,
      credentialId: entry.principal.credentialId,
    };
  return { ok: true, principal: entry.principal };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "signature verification failed";
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
