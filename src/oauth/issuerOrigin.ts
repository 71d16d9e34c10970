/**
 * Every URL the authorization server builds comes from its configured issuer, never from the
 * request (RFC 8414 §3.3: the metadata's `issuer` must be the issuer identifier the client
 * used, and its endpoints are the issuer's; RFC 9700 §4.4 / OWASP "Host header injection").
 *
 * oidc-provider builds endpoint URLs in its metadata, the redirect to the sign-in page and
 * the audiences it accepts in client assertions from Koa's `ctx.href`, which Koa derives from
 * the request's `Host` header (and `X-Forwarded-*` when `proxy` is on): a request with
 * `Host: evil.example.com` got metadata pointing every client at evil.example.com. Pinning
 * `href`, `host`, `hostname` and `protocol` on the provider's Koa request prototype makes the
 * issuer the only source. The protocol too: behind a TLS-terminating proxy the gateway sees
 * plain http, but its URLs (and its cookies' `Secure` flag) are those of its https issuer.
 */
import type { OidcProvider } from "./oidcProvider.js";

export function pinToIssuer(provider: OidcProvider, issuer: URL): void {
  const origin = issuer.origin;
  const protocol = issuer.protocol.slice(0, -1);
  Object.defineProperties(provider.request, {
    href: {
      configurable: true,
      get(this: { originalUrl: string }) {
        // An absolute-form request target (`GET http://other/x`) keeps only its path.
        const url = this.originalUrl.startsWith("/") ? this.originalUrl : "/";
        return `${origin}${url}`;
      },
    },
    host: { configurable: true, get: () => issuer.host },
    hostname: { configurable: true, get: () => issuer.hostname },
    protocol: { configurable: true, get: () => protocol },
  });
}
