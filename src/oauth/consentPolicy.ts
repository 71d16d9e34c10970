/**
 * When a user's earlier consent may be reused without showing the consent page again
 * (RFC 8252 §8.6: an authorization server should not process an authorization request from a
 * client whose identity it cannot assure without user interaction; MCP security best
 * practices, "Confused Deputy Problem": consent is kept per user and per client).
 *
 * A client's identity is assured only when nobody else can receive its codes:
 * - clients the operator registered (the admin console; machine clients never reach here);
 * - a Client ID Metadata Document client (its `client_id` is an https URL) whose every
 *   redirect URI is https on the `client_id`'s own origin: the codes reach only the site that
 *   publishes the document.
 * Every other client is asked every time, whatever was consented before:
 * - any dynamically registered client: its `client_id` is public (it travels in every
 *   authorization URL) and registration proves nothing about who registered;
 * - loopback and custom-scheme redirects: any program on the machine can listen on a loopback
 *   port (any port is accepted, RFC 8252 §7.3) or claim a scheme, so a link naming the
 *   client's id and the attacker's port would otherwise deliver a code with no click.
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

/** The origin of a Client ID Metadata Document `client_id` (an https URL), else null. */
function metadataDocumentOrigin(clientId: string): string | null {
  const url = URL.parse(clientId);
  return url !== null && url.protocol === "https:" ? url.origin : null;
}

/**
 * RFC 8252 §8.6: can a remembered consent be reused for this client without asking again?
 * `operatorRegistered` names the clients the operator created (not self-registered).
 */
export function clientIdentityAssured(
  client: Pick<OidcClient, "clientId" | "redirectUris">,
  operatorRegistered: (clientId: string) => boolean,
): boolean {
  if (operatorRegistered(client.clientId)) return true;
  const origin = metadataDocumentOrigin(client.clientId);
  if (origin === null) return false; // dynamically registered (or an http dev document)
  return (
    client.redirectUris.length > 0 &&
    client.redirectUris.every((u) => {
      const url = URL.parse(u);
      return url !== null && url.protocol === "https:" && url.origin === origin && !isLocalRedirect(u);
    })
  );
}

/**
 * Replaces oidc-provider's `native_client_prompt` check (in the policy from
 * `interactionPolicy.base()`, which asks native clients only) with the rule above: the consent
 * prompt is requested for every client whose identity is not assured, unless the user has
 * just answered it in this very interaction.
 */
export function askUnlessClientIdentityAssured(
  policy: OidcInteractionPolicy,
  operatorRegistered: (clientId: string) => boolean,
): void {
  const check = policy.get("consent")?.checks.get("native_client_prompt");
  if (check === undefined)
    throw new Error("oidc-provider's consent policy has no native_client_prompt check");
  check.check = (ctx: OidcContext) => {
    const client = ctx.oidc.client;
    if (client === undefined) return true;
    if (ctx.oidc.params?.response_type === "none") return false;
    if (ctx.oidc.result?.consent !== undefined) return false;
    return !clientIdentityAssured(client, operatorRegistered);
  };
}
