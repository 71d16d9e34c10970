/**
 * Task tokens: RFC 9068 JWT access tokens (`typ: at+jwt`) bound to one task, signed with the
 * store's authorization-server signing keys (src/oauth/signingKeys.ts, ES256), which exist
 * whatever the OAuth mode. Claims (RFC 9068 §2.2): `iss` the gateway's public base URL (the
 * built-in authorization server's issuer), `sub` the owner's principal id, `aud` the resource
 * URL of each granted server (`<base>/mcp/<server>`, RFC 8707), `exp` no later than the task's
 * end, `iat`, `jti`, `client_id`, `scope` (an OAuth owner's scopes); plus `task_id` and RFC
 * 8693 §4.1 `act` (nested actors kept as given: a delegation chain). The signature covers
 * `act`: an altered actor fails it.
 */
import { randomBytes } from "node:crypto";
import {
  compactVerify,
  createLocalJWKSet,
  importJWK,
  type JWK,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from "jose";
import type { Actor } from "../core/principal.js";
import { oauthDatabase } from "../oauth/database.js";
import { loadSigningKeys, publicJwk, type SigningKey } from "../oauth/signingKeys.js";
import type { Store } from "../store/types.js";

export { CLI_CLIENT_ID } from "./types.js";
export const TASK_TOKEN_ALGORITHM = "ES256";
export const CLOCK_TOLERANCE_SECONDS = 5;
/** An unknown `kid` reloads the keys from the store at most this often (kid floods). */
const KEY_RELOAD_COOLDOWN_MS = 30_000;

export interface TaskTokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  task_id: string;
  act?: Actor;
  /** RFC 9068 §2.2.3: an OAuth owner's scopes, carried so the task never exceeds them. */
  scope?: string;
}

/** The resource URL (RFC 8707) of a gateway server: what a task token's `aud` lists. */
export function resourceOf(issuer: string, server: string): string {
  return `${issuer}/mcp/${server}`;
}

/** Is `value` an RFC 8693 actor object (a `sub`, optionally a nested `act`)? Depth-bounded. */
export function isActor(value: unknown, depth = 0): value is Actor {
  if (depth > 16 || value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.sub !== "string" || v.sub === "") return false;
  return v.act === undefined || isActor(v.act, depth + 1);
}

/** The store's signing keys, as tasks sign and verify with them; reloaded on an unknown `kid`. */
export class TaskKeys {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  private signing: { kid: string; key: CryptoKey | Uint8Array } | null = null;
  /** 0: the first unknown `kid` (keys rotated by another process since this one loaded) reloads at once. */
  private lastReload = 0;

  private constructor(
    private readonly store: Store,
    private readonly secret: Buffer,
    private keys: SigningKey[],
  ) {
    this.keySet = TaskKeys.keySetOf(keys);
  }

  static async load(store: Store, secret: Buffer): Promise<TaskKeys> {
    return new TaskKeys(store, secret, await loadSigningKeys(oauthDatabase(store), secret));
  }

  private static keySetOf(keys: SigningKey[]) {
    return createLocalJWKSet({ keys: keys.map((k) => publicJwk(k.jwk) as JWK) });
  }

  /** Newest active ES256 key (loadSigningKeys lists active keys first, newest first). */
  private async signingKey(): Promise<{ kid: string; key: CryptoKey | Uint8Array }> {
    if (this.signing !== null) return this.signing;
    const k = this.keys.find((s) => s.retiredAt === null && s.jwk.alg === TASK_TOKEN_ALGORITHM);
    if (k === undefined) throw new Error("no active ES256 signing key in the store");
    this.signing = { kid: k.kid, key: await importJWK(k.jwk, TASK_TOKEN_ALGORITHM) };
    return this.signing;
  }

  async sign(claims: TaskTokenClaims): Promise<string> {
    const { kid, key } = await this.signingKey();
    const { iss, sub, aud, exp, iat, jti, ...rest } = claims;
    return new SignJWT({ ...rest })
      .setProtectedHeader({ alg: TASK_TOKEN_ALGORITHM, typ: "at+jwt", kid })
      .setIssuer(iss)
      .setSubject(sub)
      .setAudience(aud.length === 1 ? (aud[0] as string) : aud)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(jti)
      .sign(key);
  }

  private async reload(): Promise<boolean> {
    if (Date.now() - this.lastReload < KEY_RELOAD_COOLDOWN_MS) return false;
    this.lastReload = Date.now();
    this.keys = await loadSigningKeys(oauthDatabase(this.store), this.secret);
    this.keySet = TaskKeys.keySetOf(this.keys);
    this.signing = null;
    return true;
  }

  /** Verifies signature, `typ`, issuer, expiry and the claims every task token has. */
  async verify(token: string, issuer: string): Promise<TaskTokenClaims> {
    const run = () =>
      jwtVerify(token, this.keySet, {
        issuer,
        typ: "at+jwt",
        algorithms: [TASK_TOKEN_ALGORITHM],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["exp", "iat", "jti", "sub", "aud", "client_id", "task_id"],
      });
    let payload: JWTPayload;
    try {
      ({ payload } = await run());
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !(await this.reload())) throw err;
      ({ payload } = await run());
    }
    return claimsOf(payload);
  }

  /** The `task_id` of a token whose signature and issuer verify, whatever its audience or expiry. */
  async taskIdOf(token: string, issuer: string): Promise<string | null> {
    const run = () => compactVerify(token, this.keySet, { algorithms: [TASK_TOKEN_ALGORITHM] });
    try {
      let verified: Awaited<ReturnType<typeof run>>;
      try {
        verified = await run();
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !(await this.reload())) throw err;
        verified = await run();
      }
      if (verified.protectedHeader.typ !== "at+jwt") return null;
      const payload: unknown = JSON.parse(new TextDecoder().decode(verified.payload));
      if (payload === null || typeof payload !== "object") return null;
      const p = payload as Record<string, unknown>;
      return p.iss === issuer && typeof p.task_id === "string" ? p.task_id : null;
    } catch {
      return null;
    }
  }
}

/** Throws unless the verified payload has every task token claim, well typed. */
function claimsOf(p: JWTPayload & Record<string, unknown>): TaskTokenClaims {
  const aud = typeof p.aud === "string" ? [p.aud] : Array.isArray(p.aud) ? p.aud : [];
  if (aud.length === 0 || !aud.every((a) => typeof a === "string")) throw new Error("aud: no resource");
  if (typeof p.task_id !== "string" || p.task_id === "") throw new Error("task_id: not a string");
  if (typeof p.client_id !== "string") throw new Error("client_id: not a string");
  if (p.act !== undefined && !isActor(p.act)) throw new Error("act: not an RFC 8693 actor");
  if (p.scope !== undefined && typeof p.scope !== "string") throw new Error("scope: not a string");
  return {
    iss: p.iss as string,
    sub: p.sub as string,
    aud,
    exp: p.exp as number,
    iat: p.iat as number,
    jti: p.jti as string,
    client_id: p.client_id,
    task_id: p.task_id,
    ...(p.act === undefined ? {} : { act: p.act as Actor }),
    ...(typeof p.scope === "string" ? { scope: p.scope } : {}),
  };
}

export function newTaskId(): string {
  return `tsk_${randomBytes(15).toString("base64url")}`;
}

export function newJti(): string {
  return randomBytes(16).toString("base64url");
}

/** What a refused JWT was refused for, for the audit reason. */
export function describeTokenError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "expired";
  if (err instanceof joseErrors.JOSEError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
