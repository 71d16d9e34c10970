/**
 * The console session: a short-lived cookie sealed with AES-256-GCM (`v2.<iv>.<ciphertext and
 * tag>`, NIST SP 800-38D: confidentiality and integrity in one; not the `v1` at-rest format of
 * src/oauth/secrets.ts, which binds the row id as associated data) naming the signed-in user,
 * HttpOnly and SameSite=Strict, `__Host-` prefixed on https (RFC 6265bis §4.1.3.2: Secure,
 * Path=/, no Domain). The same sealing keeps the sign-in state (PKCE verifier, nonce) unreadable
 * in its cookie (RFC 7636 §7.1: the verifier must stay secret). Every replica can open it; the
 * user is re-read from the store on every request, so removing a user or their admin group ends
 * their console access at once, and sign-out is remembered in the store (./signOut.ts). CSRF
 * tokens (OWASP "synchronizer token", HMAC variant) are bound to the session id.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { deriveKey, constantTimeEqual as equal, mac } from "../core/keyDerivation.js";

export interface ConsoleSession {
  /** Random per sign-in: CSRF tokens are bound to it. */
  sid: string;
  /** The built-in authorization server's subject (the local user id). */
  sub: string;
  /** Issued at, epoch milliseconds: a sign-out after this instant ends the session (./signOut.ts). */
  iat: number;
  /** Expiry, epoch seconds. */
  exp: number;
}

/** Keys for the console, derived from the server secret (HKDF, one purpose each). */
export function consoleKey(
  secret: Buffer,
  purpose: "session" | "csrf" | "login-state" | "client-secret",
): Buffer {
  return deriveKey(secret, "portcullis-console", `portcullis console ${purpose}`);
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts and authenticates a JSON value into a cookie value (AES-256-GCM, a fresh IV each time). */
export function sealCookie(key: Buffer, value: object): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([
    cipher.update(JSON.stringify(value), "utf8"),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return `v2.${iv.toString("base64url")}.${body.toString("base64url")}`;
}

/** The value when it opens under `key` and `exp` (epoch seconds) is in the future; null otherwise. */
export function openCookie<T extends { exp: number }>(
  key: Buffer,
  cookie: string | undefined,
  now = Date.now(),
): T | null {
  if (cookie === undefined) return null;
  const [version, ivText, bodyText, extra] = cookie.split(".");
  if (version !== "v2" || ivText === undefined || bodyText === undefined || extra !== undefined) return null;
  try {
    const iv = Buffer.from(ivText, "base64url");
    const body = Buffer.from(bodyText, "base64url");
    if (iv.length !== IV_BYTES || body.length <= TAG_BYTES) return null;
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const plain = Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]);
    const value = JSON.parse(plain.toString("utf8")) as T;
    return typeof value.exp === "number" && value.exp * 1000 > now ? value : null;
  } catch {
    return null;
  }
}

export function newSession(sub: string, minutes: number, now = Date.now()): ConsoleSession {
  return {
    sid: randomBytes(16).toString("base64url"),
    sub,
    iat: now,
    exp: Math.floor(now / 1000) + minutes * 60,
  };
}

export function csrfToken(key: Buffer, session: ConsoleSession): string {
  return mac(key, `csrf:${session.sid}`);
}

export function csrfValid(
  key: Buffer,
  session: ConsoleSession,
  presented: string | null | undefined,
): boolean {
  return typeof presented === "string" && equal(presented, csrfToken(key, session));
}

export interface CookieNames {
  session: string;
  login: string;
  secure: boolean;
}

/** `__Host-` names when the gateway is reached over https; plain names on http (dev). */
export function cookieNames(baseUrl: string): CookieNames {
  const secure = baseUrl.startsWith("https://");
  return secure
    ? { session: "__Host-portcullis_console", login: "__Host-portcullis_console_login", secure }
    : { session: "portcullis_console", login: "portcullis_console_login", secure };
}

export function setCookie(
  name: string,
  value: string,
  opts: { maxAge: number; secure: boolean; sameSite: "Strict" | "Lax" },
): string {
  return [
    `${name}=${value}`,
    "Path=/",
    `Max-Age=${opts.maxAge}`,
    "HttpOnly",
    `SameSite=${opts.sameSite}`,
    ...(opts.secure ? ["Secure"] : []),
  ].join("; ");
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
