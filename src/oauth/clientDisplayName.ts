/**
 * The name a person is shown for an OAuth client on the sign-in and consent pages: its
 * registered `client_name` (RFC 7591 §2; a Client ID Metadata Document's `client_name`),
 * else the host its answer goes to (the redirect URI: what the browser will visibly reach),
 * never the client id — a random string to a person, and for a dynamically registered client
 * an internal id. The name is the client's own claim, so the pages also say where the answer
 * goes (MCP security best practices, "Confused Deputy Problem").
 */
import type { OidcClient } from "./oidcProvider.js";

/** Longest name shown; longer ones are cut (a name is not a place for a paragraph). */
const MAX_NAME = 80;

/** The host a redirect URI reaches (`127.0.0.1:8080`, `app.example.com`), or a native app's scheme. */
export function redirectTarget(uri: string | undefined): string | null {
  const url = URL.parse(uri ?? "");
  if (url === null) return null;
  if (url.host !== "") return url.host;
  // Private-use URI schemes of native apps (RFC 8252 §7.1): `com.example.app:/callback`.
  const scheme = url.protocol.replace(/:$/, "");
  return scheme === "" ? null : scheme;
}

export function clientDisplayName(client: OidcClient | undefined, redirectUri?: string): string {
  // Control and format characters (bidi overrides among them) could disguise the name.
  const name = (client?.clientName ?? "").replace(/[\p{Cc}\p{Cf}]/gu, "").trim();
  if (name !== "") return name.length > MAX_NAME ? `${name.slice(0, MAX_NAME - 1)}…` : name;
  for (const uri of [redirectUri, ...(client?.redirectUris ?? [])]) {
    const target = redirectTarget(uri);
    if (target !== null) return target;
  }
  return "an application";
}
