/**
 * Binds legacy (2025-x) MCP session ids to the caller that created them, so a session id
 * seen by another caller cannot be used to ride on that session (MCP security best
 * practices, "Session Hijacking"). Unknown and foreign sessions both answer 404, which
 * makes a legacy client start a new session.
 *
 * Bounded twice: per caller (a caller's oldest session goes when it opens one too many, so
 * a caller opening session after session only ever evicts its own) and overall.
 */
import { GatewayError, RpcCode } from "../core/errors.js";

export type SessionCheck = "ok" | "unknown" | "foreign";

interface Binding {
  principalId: string;
  server: string;
  lastSeen: number;
}

export class SessionBindings {
  private bindings = new Map<string, Binding>();
  /** Each caller's session ids, oldest first. */
  private byPrincipal = new Map<string, Set<string>>();
  private sweeper: NodeJS.Timeout;

  constructor(
    private readonly idleMs: number = 24 * 3600_000,
    private readonly maxSessions: number = 100_000,
    private readonly maxPerCaller: number = 64,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(idleMs, 60_000));
    this.sweeper.unref();
  }

  bind(sessionId: string, principalId: string, server: string): void {
    this.unbind(sessionId);
    let own = this.byPrincipal.get(principalId);
    if (own === undefined) {
      own = new Set();
      this.byPrincipal.set(principalId, own);
    }
    // Oldest first: Map and Set iteration order is insertion order.
    if (own.size >= this.maxPerCaller) this.unbind(own.values().next().value as string);
    if (this.bindings.size >= this.maxSessions) {
      const oldest = this.bindings.keys().next().value;
      if (oldest !== undefined) this.unbind(oldest);
    }
    this.bindings.set(sessionId, { principalId, server, lastSeen: Date.now() });
    own.add(sessionId);
  }

  check(sessionId: string, principalId: string, server: string): SessionCheck {
    const b = this.bindings.get(sessionId);
    if (!b || b.server !== server) return "unknown";
    if (b.principalId !== principalId) return "foreign";
    b.lastSeen = Date.now();
    return "ok";
  }

  /** Throws the 404 a legacy client answers by starting a new session, unless `check` is ok. */
  require(sessionId: string, principalId: string, server: string): void {
    const check = this.check(sessionId, principalId, server);
    if (check === "ok") return;
    throw new GatewayError(
      404,
      RpcCode.SessionNotFound,
      "Session not found",
      check === "foreign"
        ? "session id belongs to another caller (hijack attempt refused)"
        : "unknown session id",
    );
  }

  unbind(sessionId: string): void {
    const b = this.bindings.get(sessionId);
    if (b === undefined) return;
    this.bindings.delete(sessionId);
    const own = this.byPrincipal.get(b.principalId);
    own?.delete(sessionId);
    if (own?.size === 0) this.byPrincipal.delete(b.principalId);
  }

  /** Ids of every live session of a caller on a server. */
  sessionsOf(principalId: string, server: string): string[] {
    const out: string[] = [];
    for (const [id, b] of this.bindings)
      if (b.principalId === principalId && b.server === server) out.push(id);
    return out;
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleMs;
    for (const [id, b] of this.bindings) if (b.lastSeen < cutoff) this.unbind(id);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
