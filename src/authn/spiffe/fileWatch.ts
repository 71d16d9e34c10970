/**
 * Noticing that files written by a SPIFFE helper changed (trust bundles, SVID certificates and
 * keys): fs.watch on their directories, which also sees atomic renames, plus a periodic stat
 * as the fallback where file events are lost (network file systems, some containers).
 * `onChange` runs once per observed change of any of the files; the reader decides whether
 * the new content is usable.
 */
import { type FSWatcher, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";

export interface FileWatch {
  close(): void;
}

function statKey(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "";
  }
}

export function watchFiles(
  files: readonly string[],
  onChange: () => void,
  statIntervalMs: number,
): FileWatch {
  const seen = new Map(files.map((f) => [f, statKey(f)]));
  const check = () => {
    let changed = false;
    for (const f of files) {
      const now = statKey(f);
      // A file missing mid-rename is not a change: the next event or stat sees the new one.
      if (now !== "" && now !== seen.get(f)) {
        seen.set(f, now);
        changed = true;
      }
    }
    if (changed) onChange();
  };
  const watchers: FSWatcher[] = [];
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const names = byDir.get(dirname(f)) ?? new Set<string>();
    names.add(basename(f));
    byDir.set(dirname(f), names);
  }
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || names.has(name)) check();
      });
      w.on("error", () => {}); // the stat timer carries on
      watchers.push(w);
    } catch {
      // fs.watch unavailable: the stat timer suffices.
    }
  }
  const timer = setInterval(check, statIntervalMs);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      for (const w of watchers) w.close();
    },
  };
}
