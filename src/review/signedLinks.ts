/**
 * Signed, expiring approve/deny links for webhook notifications: `/review/<id>/<action>?exp=
 * <epoch seconds>&sig=<HMAC-SHA-256 of "action\nid\nexp">` under a key derived from the
 * server secret. GET shows a confirmation page and only POST decides, so a link scanner or
 * chat preview fetching the URL never approves anything. Whoever holds the link can decide:
 * the approver recorded for it is "signed link".
 */
import { mac, macValid } from "./keys.js";

export type LinkAction = "approve" | "deny";

export const LINK_APPROVER = "signed link";

function signedPart(action: LinkAction, id: string, exp: number): string {
  return `${action}\n${id}\n${exp}`;
}

/** The path and query of a link (the caller prefixes the public base URL). */
export function signedLinkPath(key: Buffer, action: LinkAction, id: string, expiresAt: Date): string {
  const exp = Math.floor(expiresAt.getTime() / 1000);
  const sig = mac(key, signedPart(action, id, exp));
  return `/review/${encodeURIComponent(id)}/${action}?exp=${exp}&sig=${sig}`;
}

export type LinkCheck = { ok: true } | { ok: false; reason: "bad_signature" | "expired" };

export function checkSignedLink(
  key: Buffer,
  action: LinkAction,
  id: string,
  exp: string | undefined,
  sig: string | undefined,
  now: Date = new Date(),
): LinkCheck {
  if (exp === undefined || sig === undefined || !/^\d{1,12}$/.test(exp)) {
    return { ok: false, reason: "bad_signature" };
  }
  const expiry = Number(exp);
  if (!macValid(key, signedPart(action, id, expiry), sig)) return { ok: false, reason: "bad_signature" };
  if (expiry * 1000 <= now.getTime()) return { ok: false, reason: "expired" };
  return { ok: true };
}
