/**
 * A run-time problem a correct program meets in its surroundings (an address already in use,
 * a database that cannot be reached), as opposed to a bug. Its message is complete: it names
 * what failed (host:port, the store without its password), the cause, and the fix. The CLI
 * prints it as is, without a stack trace, and exits 1.
 */
export class OperationalError extends Error {
  override name = "OperationalError";
}

/** Why binding `host:port` failed, in words an operator acts on (Node's socket error codes). */
export function listenFailure(host: string, port: number, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const why: Record<string, string> = {
    EADDRINUSE: "the address is in use (another gateway?) — stop it or use --port",
    EACCES:
      "permission denied (ports below 1024 need privileges) — use --port 8080 or another port above 1023",
    EADDRNOTAVAIL: "this machine has no such address — check --host / listen.host",
    ENOTFOUND: "unknown host name — check --host / listen.host",
    EAI_AGAIN: "the host name cannot be resolved now — check --host / listen.host",
  };
  const text = typeof code === "string" ? why[code] : undefined;
  if (text === undefined) return err;
  return new OperationalError(`cannot listen on ${where}: ${text}`, { cause: err });
}
