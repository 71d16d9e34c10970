/**
 * The registration endpoint's guards around oidc-provider (RFC 7591): the request body is
 * read with a size limit and must be a JSON object before oidc-provider sees it, floods get
 * 429, and redirect URIs follow OAuth 2.1 §2.3.1 / RFC 8252: https, loopback http for native
 * clients (any port, §7.3), custom schemes for native clients only, never script schemes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { DEFAULT_UNUSED_CLIENT_TTL_SECONDS } from "./adapter.js";

export const REGISTRATION_BODY_LIMIT = 16 * 1024;

/** Bounds on self-registered clients (RFC 7591 §5: open registration must not exhaust storage). */
export interface RegistrationLimits {
  /** Most redirect URIs one client may register (DCR and metadata documents alike). */
  maxRedirectUris: number;
  /** A dynamically registered client unused for this long is deleted (./adapter.ts). */
  unusedClientTtlSeconds: number;
}

export const DEFAULT_REGISTRATION_LIMITS: RegistrationLimits = {
  maxRedirectUris: 10,
  unusedClientTtlSeconds: DEFAULT_UNUSED_CLIENT_TTL_SECONDS,
};
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Why a redirect URI may not be registered, or null when it may ("dev" also allows http loopback for web clients). */
export function redirectUriProblem(uri: string, applicationType: string, environment: string): string | null {
  const url = URL.parse(uri);
  if (url === null) return "is not a URL";
  if (url.hash !== "") return "must not contain a fragment";
  // RFC 3986 §3.2.1 userinfo: credentials in a URI are deprecated (§7.5) and let a lookalike
  // host hide behind them on the consent page (https://client.example@evil.example/).
  if (url.username !== "" || url.password !== "") return "must not contain userinfo";
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:") {
    if (!LOOPBACK_HOSTS.has(url.hostname)) return "must use https (http is allowed for loopback only)";
    if (environment !== "dev" && applicationType !== "native") {
      return "http loopback redirects are for native clients (application_type native) or the dev environment";
    }
    return null;
  }
  if (applicationType !== "native")
    return "custom URI schemes are for native clients (application_type native)";
  if (/^(javascript|data|file|vbscript|blob):$/.test(url.protocol)) return `${url.protocol} is never allowed`;
  return null;
}

/** RFC 7591 §3.2.2 error response. */
function registrationError(res: ServerResponse, code: string, description: string): void {
  res.writeHead(400, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify({ error: code, error_description: description }));
}

/**
 * Too many registrations from one address (RFC 7591 §5, storage exhaustion): an RFC 7591
 * §3.2.2-shaped body with OAuth's `temporarily_unavailable`, as 429 with Retry-After.
 */
export function registrationThrottled(req: IncomingMessage, res: ServerResponse, retryAfter: number): void {
  res.writeHead(429, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    "retry-after": String(retryAfter),
  });
  res.end(
    JSON.stringify({
      error: "temporarily_unavailable",
      error_description: `too many registrations from this address; retry after ${retryAfter} seconds`,
    }),
  );
  req.resume(); // the body is not read
}

/**
 * Reads a registration body (RFC 7591 §3.1) with a size limit and checks it is a JSON object
 * before oidc-provider sees it; oidc-provider then uses the buffered body.
 */
/** Refuses an oversized body without reading the rest of it (and closes the connection). */
function tooLarge(req: IncomingMessage, res: ServerResponse): false {
  res.setHeader("connection", "close");
  registrationError(
    res,
    "invalid_client_metadata",
    `the registration request exceeds ${REGISTRATION_BODY_LIMIT} bytes`,
  );
  req.resume();
  return false;
}

export async function preReadRegistration(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    registrationError(res, "invalid_client_metadata", "the registration request must be application/json");
    return false;
  }
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > REGISTRATION_BODY_LIMIT) {
    return tooLarge(req, res);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > REGISTRATION_BODY_LIMIT) {
      return tooLarge(req, res);
    }
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    registrationError(res, "invalid_client_metadata", "the registration request is not valid JSON");
    return false;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    registrationError(res, "invalid_client_metadata", "the registration request must be a JSON object");
    return false;
  }
  (req as IncomingMessage & { body?: Buffer }).body = body;
  return true;
}
