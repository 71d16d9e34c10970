/**
 * When a user's earlier consent may be reused without showing the consent page again
 * (MCP security best practices, "Confused Deputy Problem": consent is kept per user and per
 * client; RFC 8252 §8.6: an authorization server should not process a native client's
 * request without user interaction unless the identity of the client can be assured).
 *
 * oidc-provider asks every native client again (`native_client_prompt`). Portcullis keeps
 * that rule only where another program could pose as the client:
 * - a Client ID Metadata Document client (its `client_id` is a public https URL) whose
 *   redirect URIs are loopback or custom schemes: any local program can claim that id and
 *   listen on a loopback port, so the user is asked every time;
 * - a dynamically registered client holds an id issued to that one installation, and a
 *   client that receives codes only at https redirect URIs on its own host is reached only
 *   there: their remembered consent is reused (until the grant is revoked or expires).
 */
import type { OidcClient, OidcContext, OidcInteractionPolicy } from "./oidcProvider.js";

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True when the redirect URI delivers the code to this machine (loopback or custom scheme). */
export function isLocalRedirect(uri: string): boolean {
  const url = URL.parse(uri);
  if (url === null) return false;
  if (url.protocol === "http:" || url.protocol === "https:") return LOOPBACK_HOSTS.has(url.hostname);
  return true; // custom schemes (cursor://, vscode://) also land on this machine
}

/** True when the client id is a Client ID Metadata Document URL, which anyone may present. */
function isMetadataDocumentId(clientId: string): boolean {
  return clientId.startsWith("https://") || clientId.startsWith("http://");
}

/** RFC 8252 §8.6: can a remembered consent be reused for this client without asking again? */
export function clientIdentityAssured(client: Pick<OidcClient, "clientId" | "redirectUris">): boolean {
  if (!isMetadataDocumentId(client.clientId)) return true;
  return client.redirectUris.length > 0 && !client.redirectUris.some(isLocalRedirect);
}

/**
 * Narrows oidc-provider's `native_client_prompt` check (in the policy from
 * `interactionPolicy.base()`) to clients whose identity is not assured.
 */
export function rememberConsentForAssuredClients(policy: OidcInteractionPolicy): void {
  const check = policy.get("consent")?.checks.get("native_client_prompt");
  if (check === undefined)
    throw new Error("oidc-provider's consent policy has no native_client_prompt check");
  const askNative = check.check.bind(check);
  check.check = (ctx: OidcContext) => {
    const client = ctx.oidc.client;
    if (client !== undefined && clientIdentityAssured(client)) return false;
    return askNative(ctx);
  };
}
