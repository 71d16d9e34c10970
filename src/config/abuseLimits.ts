/**
 * The built-in authorization server's limits on its unauthenticated endpoints (password
 * guessing at the sign-in form, client registration floods): their shape and defaults.
 * The configuration owns them (`oauth.limits` in ./schema.ts defaults to these numbers);
 * ../oauth/abuseLimits.ts enforces them and says why each one exists (RFC 6819 §4.4.3.6,
 * RFC 7591 §5).
 */

export interface AbuseLimitSettings {
  /** Failed sign-ins allowed per username and address in {@link windowSeconds}. */
  signInFailuresPerUser: number;
  /** Failed sign-ins allowed per address (any username) in {@link windowSeconds}. */
  signInFailuresPerAddress: number;
  /** Failed sign-ins on one account, from any address, before its backoff starts. */
  signInFailuresPerAccount: number;
  /** The account's first backoff; each further failure doubles it. */
  accountBackoffSeconds: number;
  /** The longest backoff: the most a user waits after the guessing stops. */
  accountBackoffMaxSeconds: number;
  /** Client registrations allowed per address per minute. */
  registrationsPerMinute: number;
  windowSeconds: number;
}

export const DEFAULT_ABUSE_LIMITS: AbuseLimitSettings = {
  signInFailuresPerUser: 10,
  signInFailuresPerAddress: 100,
  signInFailuresPerAccount: 5,
  accountBackoffSeconds: 1,
  accountBackoffMaxSeconds: 900,
  registrationsPerMinute: 30,
  windowSeconds: 15 * 60,
};
