/**
 * The `AccessTokenVerifier` of task tokens (src/authn/oauthToken.ts; src/authn/bearerKind.ts
 * routes a JWT with a `task_id` claim here). A token passes when:
 * - its signature verifies with the store's signing keys, `typ` is `at+jwt`, `iss` is this
 *   gateway, it has not expired (RFC 9068 §4);
 * - the resource asked for is one of its audiences (RFC 8707: a task token used on another
 *   server is refused);
 * - its task is live (not ended, not expired) in this replica's view, which follows the
 *   store's change feed (./liveTasks.ts), and belongs to this environment;
 * - its owner's credential is still live (./owners.ts).
 * A verified token is cached under its SHA-256 until it expires; the steady state is one hash,
 * one map lookup, the live-task lookup and the owner check, all in memory. A task with a call
 * budget is charged by the `task scope` stage (src/pipeline/stages/taskScope.ts), in the store.
 * Fails closed (503, `unavailable`) while the change feed is down.
 */
import { createHash } from "node:crypto";
import type { AccessTokenVerifier, TokenCheck } from "../authn/oauthToken.js";
import type { Principal } from "../core/principal.js";
import { compileScopes } from "../core/scope.js";
import type { TaskRecord } from "../store/types.js";
import type { LiveTasks } from "./liveTasks.js";
import { type OwnerCheck, type OwnerStatus, ownerStatus } from "./owners.js";
import {
  CLOCK_TOLERANCE_SECONDS,
  describeTokenError,
  type TaskKeys,
  type TaskTokenClaims,
} from "./taskToken.js";

const TOKEN_CACHE_SIZE = 10_000;

interface CachedToken {
  claims: TaskTokenClaims;
  /** Epoch ms after which the entry must not be used. */
  until: number;
  /** The principal as last built (rebuilt when the task's call count moves). */
  principal: Principal | null;
  builtFor: TaskRecord | null;
  /** Set once the task is known not live: refused without asking the store again. */
  dead: string | null;
}

export interface TaskTokenVerifierOptions {
  issuer: string;
  environment: string;
  keys: TaskKeys;
  live: LiveTasks;
  /** Judges the owner's credential (./owners.ts); the first non-null answer wins. */
  ownerChecks: readonly OwnerCheck[];
  /** A task whose owner's credential was found dead: end it (reason `owner_revoked`). */
  onOwnerDead?: (taskId: string, reason: string) => void;
}

export class TaskTokenVerifier implements AccessTokenVerifier {
  private readonly cache = new Map<string, CachedToken>();

  constructor(private readonly opts: TaskTokenVerifierOptions) {}

  verify(token: string, resource: string): TokenCheck | Promise<TokenCheck> {
    const { live } = this.opts;
    let pending: Promise<void> | undefined;
    try {
      pending = live.refresh();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!live.healthy()) {
      return {
        ok: false,
        reason: "task state unknown (store change feed down): failing closed",
        credentialId: null,
        unavailable: true,
      };
    }
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
    const verified = this.verifyUncached(token, key);
    return (pending === undefined ? verified : pending.then(() => verified)).then((entry) =>
      "ok" in entry ? entry : this.check(entry, resource),
    );
  }

  /** Something changed the keys (rotation): re-verify every token on next use. */
  forgetVerified(): void {
    this.cache.clear();
  }

  private async verifyUncached(token: string, key: string): Promise<CachedToken | TokenCheck> {
    let claims: TaskTokenClaims;
    try {
      claims = await this.opts.keys.verify(token, this.opts.issuer);
    } catch (err) {
      return { ok: false, reason: `task token rejected: ${describeTokenError(err)}`, credentialId: null };
    }
    const entry: CachedToken = {
      claims,
      until: claims.exp * 1000,
      principal: null,
      builtFor: null,
      dead: null,
    };
    if (this.cache.size >= TOKEN_CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
    return entry;
  }

  /** Memory only unless the task is unknown to this replica's view (then one read of the store). */
  private check(entry: CachedToken, resource: string): TokenCheck | Promise<TokenCheck> {
    const { claims } = entry;
    const credentialId = claims.jti;
    if (!claims.aud.includes(resource)) {
      return {
        ok: false,
        reason: `task token used on another server: audience ${JSON.stringify(claims.aud)} is not ${resource}`,
        credentialId,
      };
    }
    if (entry.dead !== null) return { ok: false, reason: entry.dead, credentialId };
    const task = this.opts.live.get(claims.task_id);
    if (task !== undefined) return this.judge(entry, task);
    // Not in this replica's view: ended, expired, or created elsewhere a moment ago.
    return this.opts.live.read(claims.task_id).then((stored) => {
      const dead = deadReason(stored, claims.task_id, Date.now());
      if (dead === null && stored !== undefined) return this.judge(entry, stored);
      entry.dead = dead;
      return { ok: false, reason: dead ?? `task ${claims.task_id} is not live`, credentialId };
    });
  }

  private judge(entry: CachedToken, task: TaskRecord): TokenCheck {
    const { claims } = entry;
    const credentialId = claims.jti;
    const now = Date.now();
    const dead = deadReason(task, claims.task_id, now);
    if (dead !== null) return { ok: false, reason: dead, credentialId };
    if (task.owner.id !== claims.sub)
      return { ok: false, reason: `task token subject is not the task's owner`, credentialId };
    if (task.environment !== this.opts.environment) {
      return {
        ok: false,
        reason: `task ${task.id} belongs to environment '${task.environment}'`,
        credentialId,
      };
    }
    const oauthDeath = this.opts.live.ownerDeath(task.id);
    const owner: OwnerStatus =
      oauthDeath !== undefined
        ? { ok: false, reason: oauthDeath, final: true }
        : task.owner.method === "task"
          ? this.parentStatus(task)
          : ownerStatus(this.opts.ownerChecks, task.owner, now);
    if (!owner.ok) {
      if (owner.final === true) this.opts.onOwnerDead?.(task.id, owner.reason);
      return { ok: false, reason: `task ${task.id}: ${owner.reason}`, credentialId };
    }
    if (entry.builtFor !== task || entry.principal === null) {
      entry.principal = principalOf(task, claims);
      entry.builtFor = task;
    }
    return { ok: true, principal: entry.principal };
  }

  /** A task minted with a task token lives only as long as that parent task. */
  private parentStatus(task: TaskRecord): OwnerStatus {
    const parent = task.owner.credentialId;
    if (parent !== null && this.opts.live.get(parent) !== undefined) return { ok: true };
    return { ok: false, reason: `parent task ${parent ?? "(none)"} is no longer live` };
  }
}

/** Why a task is not live at `now`, or null when it is. */
function deadReason(task: TaskRecord | undefined, id: string, now: number): string | null {
  if (task === undefined) return `task ${id} is unknown`;
  if (task.endedAt !== null)
    return `task ${id} ended (${task.endReason ?? "ended"}) by ${task.endedBy ?? "?"}`;
  if (task.expiresAt.getTime() <= now) return `task ${id} expired at ${task.expiresAt.toISOString()}`;
  if (task.budget !== null && task.callsUsed >= task.budget) return `task ${id}'s call budget is spent`;
  return null;
}

/** The task acts for its owner: the owner's identity, the task's grants as scopes, its binding and actor. */
export function principalOf(task: TaskRecord, claims: TaskTokenClaims): Principal {
  return {
    id: task.owner.id,
    kind: task.owner.kind,
    method: "task",
    name: task.owner.name,
    environment: task.environment,
    credentialId: claims.jti,
    scopes: compileScopes(task.grants),
    // An OAuth owner's scopes (the `scope` claim); null for other owners, as for their own credentials.
    oauthScopes: claims.scope === undefined ? null : new Set(claims.scope.split(" ").filter(Boolean)),
    groups: [],
    issuedAt: new Date(claims.iat * 1000),
    expiresAt: new Date(claims.exp * 1000),
    task: {
      id: task.id,
      purpose: task.purpose,
      createdAt: task.createdAt,
      remainingCalls: task.budget === null ? null : Math.max(0, task.budget - task.callsUsed),
    },
    ...(claims.act === undefined ? {} : { actor: claims.act }),
  };
}
