/**
 * Waiting for something a test caused to become visible (a change feed, a log line, an audit
 * record). The deadline is a hang guard, not a claim about speed: a test asserts order and
 * outcome, and timing belongs in bench/.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Polls `cond` until it holds (or returns a value other than undefined/false) and returns that value. */
export async function waitFor<T>(
  what: string,
  cond: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await cond();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
