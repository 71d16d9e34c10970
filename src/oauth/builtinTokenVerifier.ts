/**
 * Verification of the built-in authorization server's access tokens at the gateway's MCP
 * endpoints (RFC 9068 JWT profile; RFC 8707 audience = exactly one endpoint). A verified
 * token is cached under a hash of the token until it expires, so the steady-state cost is one
 * hash and one map lookup; what can end a token early is checked on every use: its grant's
 * revocation (refresh-token reuse, RFC 7009) and, for a machine client's tokens (client_credentials
 * ones, which have no grant, RFC 6749 §4.4, and ID-JAG ones, which do), the client's revocation
 * or expiry.
 */
import { createHash } from "node:crypto";
import { createLocalJWKSet, type JWK, type JWTPayload, errors as joseErrors, jwtVerify } from "jose";
import type { Kysely } from "kysely";
import type { AccessTokenVerifier, TokenCheck } from "../authn/oauthToken.js";
import type { Principal } from "../core/principal.js";
import { compileScopes } from "../core/scope.js";
import { grantIsLive } from "./adapter.js";
import type { OAuthDatabase } from "./database.js";
import type { MachineClientRoster } from "./machineClientRoster.js";
import { isMachineClientId } from "./machineClients.js";
import { loadSigningKeys, publicJwk, type SigningKey } from "./signingKeys.js";
import type { ArtefactKeys } from "./storedArtefacts.js";

const TOKEN_CACHE_SIZE = 10_000;
/** An unknown `kid` reloads the keys from the store at most this often (kid floods). */
const KEY_RELOAD_COOLDOWN_MS = 30_000;
export const CLOCK_TOLERANCE_SECONDS = 5;
const ALL_SERVERS = compileScopes(["*"]);

interface CachedToken {
  principal: Principal;
  audience: string;
  /** Null for a client_credentials token: its machine client's liveness applies instead. */
  grantId: string | null;
  machineClientId: string | null;
  until: number;
}

export interface BuiltinTokenVerifierOptions {
  issuer: string;
  environment: string;
  /** The gateway's MCP endpoints: the only acceptable audiences. */
  resources: ReadonlySet<string>;
  db: Kysely<OAuthDatabase>;
  secret: Buffer;
  /** How grant ids are looked up in the store (./storedArtefacts.ts). */
  artefactKeys: ArtefactKeys;
  keys: SigningKey[];
  machineClients: MachineClientRoster;
  /** How long a revoked grant is remembered in memory: past the life of any token it issued. */
  accessTokenTtlSeconds: number;
  /**
   * Runs before every check: follows what the store's change feed reported (machine clients,
   * revoked grants, rotated keys); the answer waits for the promise it returns, if any.
   */
  observeChanges: () => Promise<void> | undefined;
}

/**
 * The authn `AccessTokenVerifier` of the built-in authorization server (the external
 * authorization server's is `OAuthTokenVerifier` in src/authn/oauthToken.ts).
 */
export class BuiltinTokenVerifier implements AccessTokenVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  private lastReload = Date.now();
  private readonly cache = new Map<string, CachedToken>();
  /** Grants revoked in this process, for the synchronous check on a cache hit. */
  private readonly revokedGrants = new Map<string, number>();

  constructor(private readonly opts: BuiltinTokenVerifierOptions) {
    this.keySet = BuiltinTokenVerifier.keySetOf(opts.keys);
  }

  private static keySetOf(keys: SigningKey[]) {
    return createLocalJWKSet({ keys: keys.map((k) => publicJwk(k.jwk) as JWK) });
  }

  /** After a rotation: verify with these keys, and forget what the old ones verified. */
  useKeys(keys: SigningKey[]): void {
    this.keySet = BuiltinTokenVerifier.keySetOf(keys);
    this.lastReload = Date.now();
    this.cache.clear();
  }

  /** Something changed elsewhere: re-verify every token (and re-read its grant) on next use. */
  forgetVerified(): void {
    this.cache.clear();
  }

  noteRevoked(grantId: string): void {
    const now = Date.now();
    this.revokedGrants.set(grantId, now);
    const horizon = now - (this.opts.accessTokenTtlSeconds + CLOCK_TOLERANCE_SECONDS + 60) * 1000;
    for (const [id, at] of this.revokedGrants) {
      if (at >= horizon) break;
      this.revokedGrants.delete(id);
    }
  }

  /**
   * Synchronous on a cache hit; the grant's (or machine client's) revocation is checked on
   * every call, so a cached token never outlives it. Fails closed (503, `unavailable`) while
   * the store's change feed is down: a revocation could be missed.
   */
  verify(token: string, resource: string): TokenCheck | Promise<TokenCheck> {
    const pending = this.opts.observeChanges();
    if (!this.opts.machineClients.feedHealthy()) {
      return {
        ok: false,
        reason: "revocation state unknown (store change feed down): failing closed",
        credentialId: null,
        unavailable: true,
      };
    }
    return this.verifyAfter(token, resource, pending);
  }

  /** `pending` is a change-feed reload: the answer waits for it so a revocation it carries is never missed. */
  private verifyAfter(
    token: string,
    resource: string,
    pending: Promise<void> | undefined,
  ): TokenCheck | Promise<TokenCheck> {
    const key = createHash("sha256").update(token).digest("base64url");
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      if (hit.until + CLOCK_TOLERANCE_SECONDS * 1000 > Date.now()) {
        return pending === undefined
          ? this.check(hit, resource)
          : pending.then(() => this.check(hit, resource));
      }
      this.cache.delete(key);
    }
    return pending === undefined
      ? this.verifyUncached(token, key, resource)
      : pending.then(() => this.verifyUncached(token, key, resource));
  }

  private remember(key: string, entry: CachedToken): void {
    if (this.cache.size >= TOKEN_CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
  }

  private async reloadKeys(): Promise<boolean> {
    if (Date.now() - this.lastReload < KEY_RELOAD_COOLDOWN_MS) return false;
    this.lastReload = Date.now();
    this.keySet = BuiltinTokenVerifier.keySetOf(await loadSigningKeys(this.opts.db, this.opts.secret));
    return true;
  }

  private principalOf(payload: JWTPayload & Record<string, unknown>): Principal {
    const sub = String(payload.sub);
    const scopes = typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
    return {
      id: `oauth:${this.opts.issuer}#${sub}`,
      kind: payload.client_id === sub ? "service" : "user",
      method: "oauth",
      name:
        typeof payload.email === "string"
          ? payload.email
          : typeof payload.preferred_username === "string"
            ? payload.preferred_username
            : sub,
      environment: this.opts.environment,
      credentialId: typeof payload.jti === "string" ? payload.jti : null,
      scopes: ALL_SERVERS,
      oauthScopes: new Set(scopes),
      groups: Array.isArray(payload.groups) ? payload.groups.map(String) : [],
      issuedAt: typeof payload.iat === "number" ? new Date(payload.iat * 1000) : null,
      expiresAt: typeof payload.exp === "number" ? new Date(payload.exp * 1000) : null,
    };
  }

  /** The machine-client roster must have been refreshed by the caller. */
  private check(entry: CachedToken, resource: string): TokenCheck {
    const credentialId = entry.principal.credentialId;
    if (entry.grantId !== null && this.revokedGrants.has(entry.grantId)) {
      return { ok: false, reason: "the token's grant was revoked", credentialId };
    }
    if (entry.machineClientId !== null) {
      const status = this.opts.machineClients.status(entry.machineClientId);
      if (!status.ok) return { ok: false, reason: status.reason, credentialId };
    }
    if (entry.audience !== resource) {
      return { ok: false, reason: `token audience ${entry.audience} is not this resource`, credentialId };
    }
    return { ok: true, principal: entry.principal };
  }

  private async verifyUncached(token: string, key: string, resource: string): Promise<TokenCheck> {
    let payload: JWTPayload & Record<string, unknown>;
    const verify = () =>
      jwtVerify(token, this.keySet, {
        issuer: this.opts.issuer,
        typ: "at+jwt",
        algorithms: ["ES256", "RS256"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["exp", "iat", "jti", "sub", "aud", "client_id"],
      });
    try {
      try {
        ({ payload } = await verify());
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !(await this.reloadKeys())) throw err;
        ({ payload } = await verify());
      }
    } catch (err) {
      const reason = err instanceof joseErrors.JOSEError ? `${err.code}: ${err.message}` : String(err);
      return { ok: false, reason: `JWT rejected: ${reason}`, credentialId: null };
    }
    const audience = payload.aud;
    const grantId = payload.grant_id;
    if (typeof audience !== "string" || !this.opts.resources.has(audience)) {
      return {
        ok: false,
        reason: "token audience is not exactly one resource of this gateway",
        credentialId: null,
      };
    }
    const until = (payload.exp as number) * 1000;
    if (typeof grantId !== "string") {
      // Only client_credentials tokens have no grant, and only machine clients get them.
      const clientId = payload.client_id;
      if (clientId !== payload.sub || !isMachineClientId(clientId))
        return { ok: false, reason: "token carries no grant", credentialId: null };
      const roster = this.opts.machineClients;
      await roster.refresh();
      const status = roster.status(clientId);
      const principal = this.principalOf(payload);
      if (status.ok) principal.name = status.client.name;
      const entry: CachedToken = { principal, audience, grantId: null, machineClientId: clientId, until };
      if (status.ok) this.remember(key, entry);
      return this.check(entry, resource);
    }
    const principal = this.principalOf(payload);
    // A machine client's token issued under a grant (an ID-JAG redeemed by it, ./idJag.ts)
    // ends with the client too: its revocation or expiry is checked on every use.
    const machineClientId = isMachineClientId(payload.client_id) ? payload.client_id : null;
    if (machineClientId !== null) await this.opts.machineClients.refresh();
    const entry: CachedToken = { principal, audience, grantId, machineClientId, until };
    if (!(await grantIsLive(this.opts.db, this.opts.artefactKeys, grantId))) {
      this.noteRevoked(grantId);
      return { ok: false, reason: "the token's grant was revoked", credentialId: principal.credentialId };
    }
    this.remember(key, entry);
    return this.check(entry, resource);
  }
}
