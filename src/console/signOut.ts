/**
 * Console sign-out that holds on every replica (OWASP Session Management Cheat Sheet, "Session
 * Expiration": the server must invalidate the session on logout, not only the browser's
 * cookie). The session cookie is stateless, so a copy of it kept from before sign-out would
 * otherwise stay valid until it expires. The store remembers, per user, the instant of their
 * last sign-out (a session version: one row per user, never growing); a session issued at or
 * before it is no session. Signing out therefore ends every console session of that user, on
 * every browser, which is what an administrator who signs out expects.
 */
import type { Store } from "../store/types.js";
import type { ConsoleSession } from "./session.js";

const settingKey = (sub: string) => `console.signedOutAt:${sub}`;

/** Ends every console session of `sub` issued up to `at` (epoch ms). */
export async function recordSignOut(store: Store, sub: string, at: number = Date.now()): Promise<void> {
  await store.setSetting(settingKey(sub), String(at));
}

/** True when the session was issued before its user's last sign-out (or carries no issue time). */
export async function signedOut(store: Store, session: ConsoleSession): Promise<boolean> {
  if (typeof session.iat !== "number" || !Number.isFinite(session.iat)) return true;
  const stored = await store.getSetting(settingKey(session.sub));
  if (stored === undefined) return false;
  const at = Number(stored);
  return !Number.isFinite(at) || session.iat <= at;
}
