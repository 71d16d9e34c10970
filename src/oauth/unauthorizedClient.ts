/**
 * RFC 6749 §5.2: a client that uses a grant type it is not registered for gets
 * `unauthorized_client` ("The authenticated client is not authorized to use this
 * authorization grant type"). oidc-provider answers `invalid_request` with a fixed
 * description; this post-middleware at the token endpoint puts the RFC's code on the wire
 * (e.g. a self-registered public client trying client_credentials). Nothing else changes.
 */
import type { OidcProvider } from "./oidcProvider.js";

const NOT_ALLOWED = "requested grant type is not allowed for this client";

interface KoaContext {
  oidc?: { route?: string };
  status: number;
  body: unknown;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

export function reportUnauthorizedClient(provider: OidcProvider): void {
  (provider as unknown as { use(mw: Middleware): void }).use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== "token" || ctx.status !== 400) return;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | null;
    if (
      body !== null &&
      typeof body === "object" &&
      body.error === "invalid_request" &&
      body.error_description === NOT_ALLOWED
    ) {
      body.error = "unauthorized_client";
    }
  });
}
