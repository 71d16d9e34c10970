/**
 * Binds legacy (2025-x) MCP session ids to the caller that created them, so a session id
 * seen by another caller cannot be used to ride on that session (MCP security best
 * practices, "Session Hijacking"). Unknown and foreign sessions both answer 404, which
 * makes a legacy client start a new session.
 */
export type SessionCheck = "ok" | "unknown" | "foreign";

interface Binding {
  principalId: string;
  server: string;
  lastSeen: number;
}

export class SessionBindings {
  private bindings = new Map<string, Binding>();
  private sweeper: NodeJS.Timeout;

  constructor(
    private readonly idleMs: number = 24 * 3600_000,
    private readonly maxSessions: number = 100_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(idleMs, 60_000));
    this.sweeper.unref();
  }

  bind(sessionId: string, principalId: string, server: string): void {
    if (this.bindings.size >= this.maxSessions) {
      // Oldest first: Map iteration order is insertion order.
      const oldest = this.bindings.keys().next().value;
      if (oldest !== undefined) this.bindings.delete(oldest);
    }
    this.bindings.set(sessionId, { principalId, server, lastSeen: Date.now() });
  }

  check(sessionId: string, principalId: string, server: string): SessionCheck {
    const b = this.bindings.get(sessionId);
    if (!b || b.server !== server) return "unknown";
    if (b.principalId !== principalId) return "foreign";
    b.lastSeen = Date.now();
    return "ok";
  }

  unbind(sessionId: string): void {
    this.bindings.delete(sessionId);
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
    for (const [id, b] of this.bindings) if (b.lastSeen < cutoff) this.bindings.delete(id);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
