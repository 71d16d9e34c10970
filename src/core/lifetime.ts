/**
 * What a running process must undo, in the order it must undo it: the last part started is
 * the first stopped. Each part registers its stop (`defer`) as soon as it has started, so
 * stopping the gateway and unwinding a startup that failed half-way are the same code: only
 * what was started is stopped, in reverse.
 *
 * A stop that fails does not keep the others from running (a store that will not close must
 * not leave the audit queue unflushed); every failure is reported to `onError`, and `close()`
 * rejects at the end with all of them (an AggregateError) so the caller knows the stop was
 * not clean.
 */

export type Stop = () => void | Promise<void>;

/** A registered stop, which can also be run early (once; it then leaves the stack). */
export interface Deferred {
  dispose(): Promise<void>;
}

interface Entry {
  name: string;
  stop: Stop;
  done: Promise<void> | null;
}

export class Lifetime {
  private readonly stack: Entry[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly onError: (err: unknown, part: string) => void = () => {}) {}

  /** Registers how to stop `name`, which has just started. */
  defer(name: string, stop: Stop): Deferred {
    if (this.closing !== null) throw new Error(`cannot start ${name}: already stopping`);
    const entry: Entry = { name, stop, done: null };
    this.stack.push(entry);
    return {
      dispose: async () => {
        const at = this.stack.indexOf(entry);
        if (at >= 0) this.stack.splice(at, 1);
        await this.run(entry);
      },
    };
  }

  /** `part`, whose `close()` is deferred: for parts built and started in one call. */
  add<T extends { close(): void | Promise<void> }>(name: string, part: T): T {
    this.defer(name, () => part.close());
    return part;
  }

  /**
   * Runs `start`; when it throws, stops everything started so far (in reverse) and rethrows
   * the startup error (a stop's failure is only reported: the cause is what the caller needs).
   */
  async starting<T>(start: () => Promise<T>): Promise<T> {
    try {
      return await start();
    } catch (err) {
      await this.close().catch(() => {});
      throw err;
    }
  }

  /** Stops every part in reverse order of start; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      for (let entry = this.stack.pop(); entry !== undefined; entry = this.stack.pop()) {
        try {
          await this.run(entry);
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0)
        throw new AggregateError(errors, `${errors.length} part(s) did not stop cleanly`);
    })();
    return this.closing;
  }

  private run(entry: Entry): Promise<void> {
    entry.done ??= (async () => {
      try {
        await entry.stop();
      } catch (err) {
        this.onError(err, entry.name);
        throw err;
      }
    })();
    return entry.done;
  }
}
