/**
 * Upstream checks at start, and a light probe after: a stdio `command` that is not on the
 * child's PATH or not executable, and an HTTP upstream that does not answer, are reported at
 * start with a warning that names the server and the fix, instead of at the first call. They
 * never stop the gateway: a server may be installed or started after it (docs/operations.md).
 * HTTP upstreams that carried no call during the last {@link PROBE_EVERY_MS} are probed again
 * (one small request per upstream per interval; a call costs the request path one set insert), so their health follows a server that goes away or
 * comes back while nobody calls it.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import type { Logger } from "pino";
import type { StdioServerConfig } from "../config/schema.js";
import type { UpstreamHealth } from "../telemetry/upstreamHealth.js";
import type { Upstream } from "./upstream.js";

export const PROBE_EVERY_MS = 30_000;

function executableFile(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return "not a file";
    accessSync(path, constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : code === "EACCES" ? "not executable" : String(code);
  }
}

/**
 * Where spawn() finds `command`, or null: a path with a slash is taken against `cwd`, a bare
 * name is looked up on `path` (the child's PATH; on Windows with PATHEXT). Only an executable
 * file counts. Shared by the start check below and `portcullis doctor`.
 */
export function findCommand(command: string, path: string | undefined, cwd: string): string | null {
  if (command.includes("/") || command.includes("\\")) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    return executableFile(file) === null ? file : null;
  }
  const exts = process.platform === "win32" ? (process.env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (path ?? "").split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const file = join(resolve(cwd, dir), command + ext);
      if (executableFile(file) === null) return file;
    }
  }
  return null;
}

/**
 * Why `config.command` cannot be started with the child's PATH (`env.PATH`, else the
 * gateway's), with the fix; null when it can.
 */
export function commandProblem(
  name: string,
  config: Pick<StdioServerConfig, "command" | "cwd">,
  env: Readonly<Record<string, string>>,
): string | null {
  const { command } = config;
  const cwd = config.cwd ?? process.cwd();
  const path = env.PATH ?? process.env.PATH;
  if (findCommand(command, path, cwd) !== null) return null;
  if (command.includes("/") || command.includes("\\")) {
    const file = isAbsolute(command) ? command : resolve(cwd, command);
    return `servers.${name}.command '${command}' cannot be run (${executableFile(file)}: ${file}): fix the path, or install the server there`;
  }
  const dirs = (path ?? "").split(delimiter).filter(Boolean);
  // Not found as an executable file: say so, or name the file that is there but cannot run.
  for (const dir of dirs) {
    const why = executableFile(join(resolve(cwd, dir), command));
    if (why !== "no such file")
      return `servers.${name}.command '${command}' cannot be run (${join(dir, command)}: ${why}): make it executable (chmod +x), or set command to another path`;
  }
  return `servers.${name}.command '${command}' is not on PATH (${dirs.length} directories searched): install it, set command to its absolute path, or set servers.${name}.env.PATH`;
}

/**
 * Checks every upstream once now (in the background: never delays the start) and probes idle
 * HTTP upstreams every {@link PROBE_EVERY_MS}. Returns the stop.
 */
export function watchUpstreams(
  routes: ReadonlyMap<string, { upstream: Upstream }>,
  health: UpstreamHealth,
  log: Logger,
): { close(): Promise<void> } {
  const running = new Set<Promise<void>>();
  const run = (name: string, route: { upstream: Upstream }) => {
    if (route.upstream.check === undefined) return;
    const p = route.upstream
      .check()
      .catch((err: unknown) => log.warn({ err, server: name }, "upstream check failed unexpectedly"))
      .finally(() => running.delete(p));
    running.add(p);
  };
  for (const [name, route] of routes) run(name, route);
  const timer = setInterval(() => {
    const idle = health.idleSince();
    for (const [name, route] of routes)
      if (route.upstream.probed === true && idle.has(name)) run(name, route);
  }, PROBE_EVERY_MS);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await Promise.all(running);
    },
  };
}
