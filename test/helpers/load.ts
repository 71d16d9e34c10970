/**
 * Load for fault tests: named workers each send one request after another until stopped, and
 * every answer is kept with the time it arrived, so a test can say what clients saw before,
 * during and after a fault (and report the figures with t.diagnostic).
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface Answer {
  worker: string;
  /** performance.now() when the answer arrived. */
  at: number;
  /** HTTP status; 0 when the request failed without one (connection refused or reset). */
  status: number;
  retryAfter: string | null;
  body: string;
}

export type Request = (n: number) => Promise<{ status: number; headers: Headers; text: string }>;

export interface Load {
  answers: Answer[];
  /** Answers of the workers whose name starts with `prefix`, after `since` when given. */
  of(prefix: string, since?: number): Answer[];
  stop(): Promise<void>;
}

export function startLoad(
  workers: Record<string, Request>,
  opts: { pauseMs?: number; stopOnNetworkError?: boolean } = {},
): Load {
  const answers: Answer[] = [];
  let stopped = false;
  const run = async (worker: string, send: Request) => {
    for (let n = 0; !stopped; n++) {
      try {
        const res = await send(n);
        answers.push({
          worker,
          at: performance.now(),
          status: res.status,
          retryAfter: res.headers.get("retry-after"),
          body: res.text,
        });
      } catch (err) {
        answers.push({ worker, at: performance.now(), status: 0, retryAfter: null, body: String(err) });
        if (opts.stopOnNetworkError) return;
      }
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  };
  const running = Object.entries(workers).map(([name, send]) => run(name, send));
  return {
    answers,
    of: (prefix, since = Number.NEGATIVE_INFINITY) =>
      answers.filter((a) => a.worker.startsWith(prefix) && a.at >= since),
    async stop() {
      stopped = true;
      await Promise.all(running);
    },
  };
}
