/**
 * Limits on the authorization server's unauthenticated endpoints:
 * - password guessing at the sign-in form (RFC 6819 §4.4.3.6 and §5.1.4.2.3: limit online
 *   guessing) — failures are counted per username and source address, and per source address
 *   alone; success clears the pair. Keyed by the pair, not the username alone, so an attacker
 *   cannot lock a user out from elsewhere;
 * - client registration floods (RFC 7591 §5: open registration can be abused to exhaust
 *   storage) — registrations are counted per source address.
 * Counters live in this process (rate-limiter-flexible's memory backend): each replica keeps
 * its own, which bounds guessing per replica.
 */
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

export interface AbuseLimitSettings {
  /** Failed sign-ins allowed per username and address in {@link windowSeconds}. */
  signInFailuresPerUser: number;
  /** Failed sign-ins allowed per address (any username) in {@link windowSeconds}. */
  signInFailuresPerAddress: number;
  /** Client registrations allowed per address per minute. */
  registrationsPerMinute: number;
  windowSeconds: number;
}

export const DEFAULT_ABUSE_LIMITS: AbuseLimitSettings = {
  signInFailuresPerUser: 10,
  signInFailuresPerAddress: 100,
  registrationsPerMinute: 30,
  windowSeconds: 15 * 60,
};

export interface AbuseLimits {
  /** Seconds to wait when sign-in is refused for this username from this address, else null. */
  signInRetryAfter(username: string, address: string): Promise<number | null>;
  signInFailed(username: string, address: string): Promise<void>;
  signInSucceeded(username: string, address: string): Promise<void>;
  /** Counts a registration; seconds to wait when over the limit, else null. */
  registrationRetryAfter(address: string): Promise<number | null>;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Case-folded, so that varying the case of a username does not multiply the attempts. */
const userKey = (username: string, address: string) => `${username.toLowerCase().slice(0, 128)}|${address}`;

export function createAbuseLimits(settings: AbuseLimitSettings = DEFAULT_ABUSE_LIMITS): AbuseLimits {
  const perUser = new RateLimiterMemory({
    keyPrefix: "signin-user",
    points: settings.signInFailuresPerUser,
    duration: settings.windowSeconds,
  });
  const perAddress = new RateLimiterMemory({
    keyPrefix: "signin-address",
    points: settings.signInFailuresPerAddress,
    duration: settings.windowSeconds,
  });
  const registrations = new RateLimiterMemory({
    keyPrefix: "registration",
    points: settings.registrationsPerMinute,
    duration: 60,
  });

  const exhausted = async (limiter: RateLimiterMemory, key: string, points: number) => {
    const res = await limiter.get(key);
    return res !== null && res.consumedPoints >= points ? seconds(res.msBeforeNext) : null;
  };

  return {
    async signInRetryAfter(username, address) {
      return (
        (await exhausted(perUser, userKey(username, address), settings.signInFailuresPerUser)) ??
        (await exhausted(perAddress, address, settings.signInFailuresPerAddress))
      );
    },

    async signInFailed(username, address) {
      // consume() rejects with a RateLimiterRes once over the limit: the count is what matters.
      await Promise.allSettled([perUser.consume(userKey(username, address)), perAddress.consume(address)]);
    },

    async signInSucceeded(username, address) {
      await perUser.delete(userKey(username, address));
    },

    async registrationRetryAfter(address) {
      try {
        await registrations.consume(address);
        return null;
      } catch (res) {
        if (res instanceof RateLimiterRes) return seconds(res.msBeforeNext);
        throw res;
      }
    },
  };
}
