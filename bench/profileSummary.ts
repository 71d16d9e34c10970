/**
 * Summarises a V8 `.cpuprofile` (written by `node --cpu-prof`): self time by function and
 * by file or package, so a profile can be read in a report without DevTools.
 *
 *   node dist/bench/profileSummary.js <file.cpuprofile> [top]
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where code lives: a package, a gateway module, node's internals, or V8's pseudo-frames. */
function place(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith("node:")) return url;
  const own = /\/dist\/((?:src|bench)\/.*)$/.exec(url);
  return own ? (own[1] as string) : url;
}

/**
 * `window` ([from, to] in µs of the monotonic clock, `process.hrtime` on Linux, which V8's
 * sample timestamps also use) keeps only the samples taken under load, not start-up.
 */
export function summarise(profile: CpuProfile, top = 30, window?: [number, number]): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window[0] || at > window[1])) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  });
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const where = place(frame.url, frame.functionName);
    const fn = `${frame.functionName || "(anonymous)"}  ${where}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  }
  const idle = byPlace.get("(idle)") ?? 0;
  const busy = total - idle;
  const table = (m: Map<string, number>, n: number) =>
    [...m]
      .filter(([k]) => k !== "(idle)" && !k.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(
        ([k, us]) =>
          `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`,
      );
  return [
    `profile: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / total).toFixed(0)}%); shares below are of busy time`,
    "",
    "self time by file or package:",
    ...table(byPlace, 20),
    "",
    `self time by function (top ${top}):`,
    ...table(byFunction, top),
    "",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: profileSummary <file.cpuprofile> [top]\n");
    process.exit(2);
  }
  process.stdout.write(
    summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(process.argv[3] ?? 30)),
  );
}
