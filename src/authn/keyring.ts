/**
 * The in-memory view of API keys that the request path reads: one HMAC and one map lookup
 * per request. It is a FeedCache (../store/feedCache.ts): reloaded whenever the store's change
 * feed reports a change made anywhere (a CLI revoke, another replica), and the request that
 * notices the change waits for the reload, so a revocation takes effect on the next request
 * (within the feed's 20 ms check interval for changes made in another process). If changes
 * can no longer be observed (e.g. the PostgreSQL listener is down), every key is refused:
 * fail closed.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Principal } from "../core/principal.js";
import { compileScopes } from "../core/scope.js";
import { FeedCache } from "../store/feedCache.js";
import type { ApiKeyRecord, Store } from "../store/types.js";
import { parseKey } from "./keyFormat.js";

interface LoadedKey {
  record: ApiKeyRecord;
  hash: Buffer;
  principal: Principal;
}

export type KeyCheck =
  | { ok: true; principal: Principal }
  | {
      ok: false;
      reason: string;
      credentialId: string | null;
      detail?: Record<string, unknown>;
      /** The key could not be judged (revocations may be missed): 503, not 401. */
      unavailable?: true;
    };

export function hashKey(secret: Buffer, key: string): string {
  return createHmac("sha256", secret).update(key).digest("hex");
}

/** The keys as the request path reads them: by id. */
function loadKeys(store: Store): Promise<Map<string, LoadedKey>> {
  return store.listKeys({ includeRevoked: true }).then((records) => {
    const keys = new Map<string, LoadedKey>();
    for (const record of records) {
      keys.set(record.id, {
        record,
        hash: Buffer.from(record.hash, "hex"),
        principal: keyPrincipal(record),
      });
    }
    return keys;
  });
}

export class Keyring {
  private readonly keys: FeedCache<Map<string, LoadedKey>>;
  /** Usage counts not yet written to the store. */
  private usage = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly store: Store,
    private readonly secret: Buffer,
    private readonly environment: string,
  ) {
    this.keys = new FeedCache(store, new Map(), { load: () => loadKeys(store) });
  }

  start(): Promise<void> {
    return this.keys.start();
  }

  close(): Promise<void> {
    return this.keys.close();
  }

  /** False when revocations could be missed; the gateway then refuses every key. */
  healthy(): boolean {
    return this.keys.healthy();
  }

  /**
   * Makes sure the view reflects every committed change. Synchronous (returns undefined)
   * in the steady state; returns a promise only right after a change.
   */
  refresh(): Promise<void> | undefined {
    return this.keys.refresh();
  }

  /** Verifies a presented key string. Call refresh() first. */
  verify(presented: string, now: number = Date.now()): KeyCheck {
    const parsed = parseKey(presented);
    if (!parsed.ok) {
      return {
        ok: false,
        reason: parsed.reason === "malformed" ? "malformed key" : "key checksum mismatch",
        credentialId: null,
      };
    }
    if (parsed.environment !== this.environment) {
      return {
        ok: false,
        reason: `key minted for environment '${parsed.environment}' presented to environment '${this.environment}'`,
        credentialId: parsed.id,
        detail: { keyEnvironment: parsed.environment, gatewayEnvironment: this.environment },
      };
    }
    if (!this.healthy()) {
      return {
        ok: false,
        reason: "revocation state unknown (store change feed down): failing closed",
        credentialId: parsed.id,
        unavailable: true,
      };
    }
    const loaded = this.keys.value.get(parsed.id);
    if (!loaded) return { ok: false, reason: "unknown key id", credentialId: parsed.id };
    const candidate = createHmac("sha256", this.secret).update(presented).digest();
    if (candidate.length !== loaded.hash.length || !timingSafeEqual(candidate, loaded.hash)) {
      return { ok: false, reason: "key secret does not match", credentialId: parsed.id };
    }
    const { record } = loaded;
    if (record.environment !== this.environment) {
      return {
        ok: false,
        reason: `stored key belongs to environment '${record.environment}'`,
        credentialId: record.id,
      };
    }
    if (record.revokedAt !== null && record.revokedAt.getTime() <= now) {
      return {
        ok: false,
        reason: `key revoked at ${record.revokedAt.toISOString()}`,
        credentialId: record.id,
      };
    }
    if (record.expiresAt.getTime() <= now) {
      return {
        ok: false,
        reason: `key expired at ${record.expiresAt.toISOString()}`,
        credentialId: record.id,
      };
    }
    const u = this.usage.get(record.id);
    if (u) {
      u.count++;
      u.last = now;
    } else {
      this.usage.set(record.id, { count: 1, last: now });
    }
    return { ok: true, principal: loaded.principal };
  }

  /**
   * Whether the key with this id is live (known, in this environment, not revoked, not
   * expired), without its secret: a task owned by the key (src/tasks/) is refused once it is
   * not. Memory only; call refresh() first.
   */
  keyStatus(
    id: string,
    now: number = Date.now(),
  ): { ok: true } | { ok: false; reason: string /** Revoked or expired: over for good. */; final: boolean } {
    const loaded = this.keys.value.get(id);
    // Unknown here may only mean not heard of yet (created on another replica an instant ago).
    if (!loaded) return { ok: false, reason: `owner key ${id} is unknown`, final: false };
    const { record } = loaded;
    if (record.environment !== this.environment)
      return {
        ok: false,
        reason: `owner key ${id} belongs to environment '${record.environment}'`,
        final: false,
      };
    if (record.revokedAt !== null && record.revokedAt.getTime() <= now)
      return {
        ok: false,
        reason: `owner key ${id} revoked at ${record.revokedAt.toISOString()}`,
        final: true,
      };
    if (record.expiresAt.getTime() <= now)
      return {
        ok: false,
        reason: `owner key ${id} expired at ${record.expiresAt.toISOString()}`,
        final: true,
      };
    return { ok: true };
  }

  /** Hands pending usage counts to the store (called by the background flusher). */
  async flushUsage(): Promise<void> {
    if (this.usage.size === 0) return;
    const batch = [...this.usage].map(([id, u]) => ({ id, count: u.count, lastUsedAt: new Date(u.last) }));
    this.usage = new Map();
    await this.store.recordKeyUsage(batch);
  }
}

/** The principal an API key authenticates as (its owner, for a task it mints). */
export function keyPrincipal(record: ApiKeyRecord): Principal {
  return {
    id: `key:${record.id}`,
    kind: "service",
    method: "api_key",
    name: record.name,
    environment: record.environment,
    credentialId: record.id,
    scopes: compileScopes(record.scopes),
    oauthScopes: null,
    groups: [],
    issuedAt: record.createdAt,
    expiresAt: record.expiresAt,
  };
}
