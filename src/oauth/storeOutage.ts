/**
 * The authorization server while its store is unreachable. oidc-provider answers any
 * exception from its adapter with `500 server_error`; when the exception is the store being
 * unreachable, this post-middleware answers `503 temporarily_unavailable` with Retry-After
 * instead (RFC 6749 §4.1.2.1 defines the code; RFC 9110 §15.6.4 the status), so a client
 * retries the same request later rather than giving up on its grant or refresh token.
 */
import type { ServerResponse } from "node:http";
import { STORE_RETRY_AFTER_SECONDS } from "../core/errors.js";
import { isStoreOutage } from "../core/outage.js";
import type { OidcProvider } from "./oidcProvider.js";

interface KoaContext {
  status: number;
  body: unknown;
  set(field: string, value: string): void;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

const BODY = {
  error: "temporarily_unavailable",
  error_description: "The authorization server cannot reach its store; retry later.",
};

export function reportStoreOutage(provider: OidcProvider): void {
  /** Contexts whose server_error was an outage (the event fires before the middleware resumes). */
  const outages = new WeakSet<object>();
  provider.on("server_error", (ctx, err) => {
    if (typeof ctx === "object" && ctx !== null && isStoreOutage(err)) outages.add(ctx);
  });
  (provider as unknown as { use(mw: Middleware): void }).use(async (ctx, next) => {
    await next();
    if (ctx.status !== 500 || !outages.has(ctx)) return;
    const page = typeof ctx.body === "string" ? ctx.body : null;
    ctx.status = 503;
    // A browser route keeps the error page oidc-provider rendered; JSON routes get the OAuth body.
    ctx.body = page ?? { ...BODY };
    ctx.set("retry-after", String(STORE_RETRY_AFTER_SECONDS));
    ctx.set("cache-control", "no-store");
  });
}

/** The same answer for a request that failed outside oidc-provider; false when not an outage. */
export function replyStoreOutage(res: ServerResponse, err: unknown): boolean {
  if (!isStoreOutage(err) || res.headersSent) return false;
  res.writeHead(503, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "retry-after": String(STORE_RETRY_AFTER_SECONDS),
  });
  res.end(JSON.stringify(BODY));
  return true;
}
