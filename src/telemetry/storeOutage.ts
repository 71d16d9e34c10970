/**
 * How a store outage shows in the log and the metrics: every lost connection is counted, at
 * most one line per 10 s is logged (a database restart must not flood the log), and a store
 * unreachable at start is logged at each retry while the gateway waits for it.
 */
import type { Logger } from "pino";
import { outageReason } from "../core/outage.js";
import type { Metrics } from "./metrics.js";

const LOG_EVERY_MS = 10_000;

export function storeOutageReporting(metrics: Pick<Metrics, "storeConnectionErrors">, log: Logger) {
  let lastOutageLog = 0;
  return {
    onConnectionError(err: unknown): void {
      metrics.storeConnectionErrors.inc();
      const now = Date.now();
      if (now - lastOutageLog < LOG_EVERY_MS) return;
      lastOutageLog = now;
      log.warn(
        { event: "store.connection_lost", reason: outageReason(err) },
        "store connection lost: requests that need the store are answered 503 until it is back",
      );
    },
    onWaiting(attempt: number, err: unknown, delayMs: number): void {
      log.warn(
        { event: "store.waiting", attempt, reason: outageReason(err), retryInMs: delayMs },
        "store unreachable at start: waiting for it (not ready meanwhile)",
      );
    },
  };
}
