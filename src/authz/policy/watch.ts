/**
 * Keeps the current policy in step with its files: loads them at start (an invalid policy
 * fails startup), then recompiles on change. An invalid change never replaces the valid
 * policy: it is reported through `onError` (file:line) and the last good policy stays.
 *
 * Parent directories are watched rather than files, so editors that save by writing a new
 * file and renaming it over the old one are still seen; events are debounced.
 */

import { type FSWatcher, statSync, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { loadPolicyFiles } from "./compile.js";
import { type CompiledPolicy, PolicyError } from "./types.js";

export interface PolicyWatcherOptions {
  /** Quiet period after the last change before recompiling (default 100 ms). */
  debounceMs?: number;
  /** A new, valid policy with a different version is now current. */
  onReload?: (policy: CompiledPolicy) => void;
  /** A change did not compile (or a watch failed); the previous policy is still current. */
  onError?: (err: PolicyError) => void;
  /** The files on disk compile again (after an error), whether or not the version changed. */
  onValid?: () => void;
}

export class PolicyWatcher {
  private policy: CompiledPolicy;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** Loads `paths` synchronously; throws PolicyError when they do not compile. */
  constructor(
    private readonly paths: readonly string[],
    private readonly options: PolicyWatcherOptions = {},
  ) {
    this.policy = loadPolicyFiles(paths);
    // dir -> file names to react to (null: any *.yaml / *.yml)
    const targets = new Map<string, Set<string> | null>();
    for (const p of paths) {
      const abs = resolve(p);
      if (statSync(abs).isDirectory()) targets.set(abs, null);
      else {
        const dir = dirname(abs);
        const names = targets.get(dir);
        if (names === null) continue;
        targets.set(dir, (names ?? new Set()).add(basename(abs)));
      }
    }
    for (const [dir, names] of targets) {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        const name = filename?.toString();
        if (name !== undefined) {
          if (names ? !names.has(name) : !/\.ya?ml$/.test(name)) return;
        }
        this.schedule();
      });
      w.on("error", (err) =>
        this.report(new PolicyError(dir, 1, `cannot watch policy directory: ${err.message}`)),
      );
      this.watchers.push(w);
    }
  }

  /** The policy in force; synchronous so the request path never waits. */
  current(): CompiledPolicy {
    return this.policy;
  }

  /** Recompiles now (also what a change triggers after the debounce). Returns whether it applied. */
  reload(): boolean {
    let next: CompiledPolicy;
    try {
      next = loadPolicyFiles(this.paths);
    } catch (err) {
      this.report(err instanceof PolicyError ? err : new PolicyError(this.paths.join(","), 1, String(err)));
      return false;
    }
    this.options.onValid?.();
    if (next.version === this.policy.version) return true;
    this.policy = next;
    this.options.onReload?.(next);
    return true;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.closed) this.reload();
    }, this.options.debounceMs ?? 100);
    this.timer.unref();
  }

  private report(err: PolicyError): void {
    this.options.onError?.(err);
  }
}
