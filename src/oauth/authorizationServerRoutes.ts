/**
 * Which requests belong to the built-in authorization server and where each goes: the
 * upstream sign-in callback, the sign-in and consent pages (./interactions.ts),
 * dynamic client registration behind its flood limit (RFC 7591, ./registration.ts), and every
 * other OAuth endpoint to oidc-provider with its default paths (RFC 8414 metadata, RFC 7009
 * revocation, RFC 7662 introspection, /token, /auth, /jwks).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { AbuseLimits } from "./abuseLimits.js";
import { type FederatedSignIn, UPSTREAM_CALLBACK_PATH } from "./federatedSignIn.js";
import { sendPage } from "./interactionPages.js";
import { handleInteraction, type InteractionDeps } from "./interactions.js";
import { INTERACTION_PREFIX } from "./interactionViews.js";
import { preReadRegistration, registrationThrottled } from "./registration.js";
import { replyStoreOutage } from "./storeOutage.js";

/** Paths oidc-provider serves with this configuration (its defaults). */
const EXACT_PATHS = new Set([
  "/auth",
  "/token",
  "/reg",
  "/jwks",
  "/token/introspection",
  "/token/revocation",
  "/request",
  "/.well-known/oauth-authorization-server",
  "/.well-known/openid-configuration",
  UPSTREAM_CALLBACK_PATH,
]);
/** `/auth/:uid` is where an interaction resumes. */
const PREFIXES = ["/auth/", INTERACTION_PREFIX];

/** True when this path belongs to the authorization server. */
export function ownsPath(pathname: string): boolean {
  return EXACT_PATHS.has(pathname) || PREFIXES.some((p) => pathname.startsWith(p));
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface AuthorizationServerRoutes {
  log: Logger;
  /** Sign-in through the upstream OpenID Provider; null when not configured. */
  signIn: FederatedSignIn | null;
  interactions: InteractionDeps;
  limits: AbuseLimits;
  /** oidc-provider's handler now (the provider is rebuilt when signing keys rotate). */
  provider: () => RequestHandler;
  /** Before /token: a signing-key rotation made elsewhere to follow first, if one may be pending. */
  beforeTokenRequest: () => Promise<void> | undefined;
}

export function routeAuthorizationServerRequest(routes: AuthorizationServerRoutes): RequestHandler {
  const { log, signIn, limits } = routes;
  const fail = (res: ServerResponse, err: unknown) => {
    log.error({ err }, "authorization server request failed");
    if (replyStoreOutage(res, err)) return;
    if (!res.headersSent) {
      res.writeHead(500, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ error: "server_error" }));
    } else {
      res.destroy();
    }
  };

  return (req, res) => {
    const pathname = new URL(req.url ?? "/", "http://x").pathname;
    if (pathname === UPSTREAM_CALLBACK_PATH) {
      if (signIn === null) sendPage(res, 404, "Not found", "<h1>Not found</h1>");
      else signIn.handleCallback(req, res).catch((err: unknown) => fail(res, err));
      return;
    }
    if (pathname.startsWith(INTERACTION_PREFIX)) {
      handleInteraction(routes.interactions, req, res).catch((err: unknown) => fail(res, err));
      return;
    }
    if (pathname === "/reg" && req.method === "POST") {
      // The socket's peer, not X-Forwarded-For: there is no trusted-proxy setting yet.
      limits
        .registrationRetryAfter(req.socket.remoteAddress ?? "unknown")
        .then(async (retryAfter) => {
          if (retryAfter !== null) {
            log.warn(
              { event: "oauth.registration_throttled", address: req.socket.remoteAddress, retryAfter },
              "client registration throttled",
            );
            return registrationThrottled(req, res, retryAfter);
          }
          if (await preReadRegistration(req, res)) routes.provider()(req, res);
        })
        .catch((err: unknown) => fail(res, err));
      return;
    }
    if (!ownsPath(pathname)) {
      sendPage(res, 404, "Not found", "<h1>Not found</h1>");
      return;
    }
    if (pathname === "/token") {
      // A rotation made elsewhere must sign this token with the new key, not a dropped one.
      const pending = routes.beforeTokenRequest();
      if (pending !== undefined) {
        pending.then(() => routes.provider()(req, res)).catch((err: unknown) => fail(res, err));
        return;
      }
    }
    routes.provider()(req, res);
  };
}
