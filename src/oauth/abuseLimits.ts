/**
 * Limits on the authorization server's unauthenticated endpoints:
 * - password guessing at the sign-in form (RFC 6819 §4.4.3.6 and §5.1.4.2.3: limit online
 *   guessing). Failures are counted per account and source address, per source address alone,
 *   and per account from any address. The first two refuse for the rest of their window; the
 *   account-wide count, which no change of address escapes, imposes a bounded exponential
 *   backoff once its free failures are spent (OWASP Authentication Cheat Sheet, "Account
 *   Lockout": a delay that grows, never a lock that only an administrator lifts): after each
 *   further failure the account waits `base · 2^n` seconds, capped at `accountBackoffMaxSeconds`,
 *   so a guesser gets about one guess per cap and the user is never kept out for longer than the
 *   cap after the guessing stops. A success clears the account's and the pair's counts.
 *   Attempts are counted when they arrive, before the password is checked, so guesses sent in
 *   parallel cannot all pass a check that only their failures would have closed.
 * - client registration floods (RFC 7591 §5: open registration can be abused to exhaust
 *   storage): registrations are counted per source address.
 * The counters live where ../store/rateLimitCounters.ts puts them: in PostgreSQL, shared by every
 * replica, when the store is PostgreSQL. Usernames appear in them, and in the logs, only as a
 * keyed hash ({@link AbuseLimits.accountRef}): people type passwords into the username field.
 */

import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";
import { type AbuseLimitSettings, DEFAULT_ABUSE_LIMITS } from "../config/abuseLimits.js";
import { deriveKey, mac } from "../core/keyDerivation.js";
import { memoryCounters, type RateLimitCounters } from "../store/rateLimitCounters.js";

// The settings and their defaults belong to the configuration (config/abuseLimits.ts): the
// schema's defaults are these numbers, and config/ imports nothing from oauth/.
export type { AbuseLimitSettings } from "../config/abuseLimits.js";
export { DEFAULT_ABUSE_LIMITS } from "../config/abuseLimits.js";

/** How long an account's failures are remembered without a success (a day). */
const ACCOUNT_MEMORY_SECONDS = 86_400;

/** The answer to a sign-in attempt, counted before the password is checked. */
export type SignInGate =
  | { allowed: false; retryAfter: number }
  | {
      allowed: true;
      /** The password was wrong (or the account unknown or disabled). */
      failed(): Promise<void>;
      succeeded(): Promise<void>;
    };

export interface AbuseLimits {
  /**
   * Counts an attempt before its password is checked, so that parallel guesses are counted as
   * they arrive rather than after their checks: refused with the seconds to wait, or allowed
   * (then report its outcome).
   */
  beginSignIn(username: string, address: string): Promise<SignInGate>;
  /** Counts a registration; seconds to wait when over the limit, else null. */
  registrationRetryAfter(address: string): Promise<number | null>;
  /** A keyed hash naming the typed username in counters and logs, never the text itself. */
  accountRef(username: string): string;
}

export interface AbuseLimitOptions {
  /** The server secret: the key of {@link AbuseLimits.accountRef} derives from it. */
  secret: Buffer;
  /** Where the counts live; default: this process's memory. */
  counters?: RateLimitCounters;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** The account's backoff after `failures` failures (none while free ones remain). */
export function accountBackoffSeconds(settings: AbuseLimitSettings, failures: number): number {
  const over = failures - settings.signInFailuresPerAccount;
  if (over <= 0) return 0;
  return Math.min(
    settings.accountBackoffMaxSeconds,
    settings.accountBackoffSeconds * 2 ** Math.min(over - 1, 30),
  );
}

export function createAbuseLimits(
  settings: AbuseLimitSettings = DEFAULT_ABUSE_LIMITS,
  opts: AbuseLimitOptions,
): AbuseLimits {
  const counters = opts.counters ?? memoryCounters();
  const refKey = deriveKey(opts.secret, "portcullis-sign-in", "account reference");
  /** Case-folded, so that varying the case of a username does not multiply the attempts. */
  const accountRef = (username: string) => mac(refKey, username.toLowerCase()).slice(0, 22);
  const pairKey = (username: string, address: string) => `${accountRef(username)}|${address}`;

  const perUser = counters.counter({
    keyPrefix: "signin-user",
    points: settings.signInFailuresPerUser,
    duration: settings.windowSeconds,
  });
  const perAddress = counters.counter({
    keyPrefix: "signin-address",
    points: settings.signInFailuresPerAddress,
    duration: settings.windowSeconds,
  });
  // Counts only: its points are never the limit, the backoff is.
  const perAccount = counters.counter({
    keyPrefix: "signin-account",
    points: 1_000_000,
    duration: ACCOUNT_MEMORY_SECONDS,
  });
  const accountWait = counters.counter({
    keyPrefix: "signin-backoff",
    points: 1,
    duration: settings.accountBackoffMaxSeconds,
  });
  const registrations = counters.counter({
    keyPrefix: "registration",
    points: settings.registrationsPerMinute,
    duration: 60,
  });

  /** The count after this point; consume() rejects with a RateLimiterRes once over its points. */
  const count = async (limiter: RateLimiterAbstract, key: string): Promise<RateLimiterRes> => {
    try {
      return await limiter.consume(key);
    } catch (res) {
      if (res instanceof RateLimiterRes) return res;
      throw res;
    }
  };
  const refused = (res: RateLimiterRes): SignInGate => ({
    allowed: false,
    retryAfter: seconds(res.msBeforeNext),
  });

  return {
    accountRef,

    async beginSignIn(username, address) {
      const account = accountRef(username);
      const pair = pairKey(username, address);
      const [byPair, byAddress] = await Promise.all([count(perUser, pair), count(perAddress, address)]);
      if (byPair.consumedPoints > settings.signInFailuresPerUser) return refused(byPair);
      if (byAddress.consumedPoints > settings.signInFailuresPerAddress) return refused(byAddress);
      const failures = (await count(perAccount, account)).consumedPoints;
      if (failures > settings.signInFailuresPerAccount) {
        // Past the free failures one attempt at a time: the first to take the slot goes on, and
        // its failure turns the slot into the backoff; every other attempt waits for it.
        const slot = await count(accountWait, account);
        if (slot.consumedPoints > 1) {
          await perAccount.reward(account);
          return refused(slot);
        }
      }
      return {
        allowed: true,
        failed: async () => {
          const wait = accountBackoffSeconds(settings, failures);
          if (wait > 0) await accountWait.block(account, wait);
        },
        succeeded: async () => {
          await Promise.all([
            perUser.delete(pair),
            perAddress.reward(address),
            perAccount.delete(account),
            accountWait.delete(account),
          ]);
        },
      };
    },

    async registrationRetryAfter(address) {
      const res = await count(registrations, address);
      return res.consumedPoints > settings.registrationsPerMinute ? seconds(res.msBeforeNext) : null;
    },
  };
}
