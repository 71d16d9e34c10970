/**
 * CPU time of a process (and of its descendants) from /proc/<pid>/stat (proc(5)): fields 14
 * and 15, utime and stime, in clock ticks (sysconf(_SC_CLK_TCK), 100 on Linux). Read before
 * and after a measured phase; the difference divided by the calls made is CPU per call.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** The fields after `(comm)`: index 0 is field 3 (state). */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** utime + stime of one process in microseconds (0 once it is gone). */
export function cpuMicros(pid: number): number {
  const f = statFields(pid);
  if (f === null) return 0;
  return ((Number(f[11]) + Number(f[12])) * 1e6) / clockTicks();
}

/** Every live descendant of `pid` (children, grandchildren …), by parent pid (field 4). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f !== null) parent.set(Number(name), Number(f[1]));
  }
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const p = frontier.pop() as number;
    for (const [child, ppid] of parent) {
      if (ppid === p) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/** Which processes a row's CPU is read from: the proxy, and the upstream MCP server. */
export interface CpuProbe {
  proxy: () => number[];
  upstream: () => number[];
}

export interface CpuSnapshot {
  proxy: Map<number, number>;
  upstream: Map<number, number>;
}

function read(pids: number[]): Map<number, number> {
  return new Map(pids.map((p) => [p, cpuMicros(p)]));
}

export function snapshot(probe: CpuProbe): CpuSnapshot {
  return { proxy: read(probe.proxy()), upstream: read(probe.upstream()) };
}

/** CPU µs spent between two snapshots, summed over the processes seen in `after`. */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, t] of after) total += t - (before.get(pid) ?? 0);
  return total;
}

export function cpuPerCall(
  before: CpuSnapshot,
  after: CpuSnapshot,
  calls: number,
): { proxyUs: number | null; upstreamUs: number } {
  const per = (us: number) => Math.round(us / Math.max(1, calls));
  return {
    proxyUs: after.proxy.size === 0 ? null : per(spent(before.proxy, after.proxy)),
    upstreamUs: per(spent(before.upstream, after.upstream)),
  };
}
