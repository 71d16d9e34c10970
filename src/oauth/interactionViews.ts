/**
 * The bodies of the authorization server's sign-in and consent pages (./interactions.ts
 * serves them in the frame of ./interactionPages.ts): the sign-in form, and the consent that
 * names the client by its display name, where it sends the user back, the scopes, and what
 * they unlock on each MCP server.
 */
import { clientDisplayName, redirectTarget } from "./clientDisplayName.js";
import { isLocalRedirect } from "./consentPolicy.js";
import { type ResourceAccess, summarizeConsent } from "./consentSummary.js";
import { escapeHtml, inlineError, PRODUCT } from "./interactionPages.js";
import type { OidcInteraction, OidcProvider } from "./oidcProvider.js";

export const INTERACTION_PREFIX = "/oauth/interaction/";

export interface LoginView {
  uid: string;
  csrf: string;
  clientName: string;
  username: string;
  /**
   * An inline error. Without the audit record's decision id: the page must be the same byte
   * for byte whether or not the username exists (test/oauth/sign-in-throttling.test.ts).
   */
  error: string | null;
  localUsers: boolean;
  upstreamName: string | null;
}

export function loginPage(v: LoginView): string {
  return [
    "<h1>Sign in</h1>",
    `<p class="lead">to continue to <strong>${escapeHtml(v.clientName)}</strong></p>`,
    v.error === null ? "" : inlineError(v.error, null),
    // A link, not a form: the upstream is another origin, which `form-action 'self'` forbids
    // as a redirect target of a form submission.
    v.upstreamName === null
      ? ""
      : `<p><a class="button" href="${INTERACTION_PREFIX}${escapeHtml(v.uid)}/upstream">Sign in with ${escapeHtml(v.upstreamName)}</a></p>`,
    ...(v.localUsers
      ? [
          `<form method="post" action="${INTERACTION_PREFIX}${escapeHtml(v.uid)}/login">`,
          `<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">`,
          `<label for="username">Username</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(v.username)}"${v.error === null ? " autofocus" : ""}>`,
          `<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${v.error === null ? "" : " autofocus"}>`,
          '<div class="actions"><button type="submit">Sign in</button></div>',
          "</form>",
        ]
      : []),
  ].join("\n");
}

export function listOf(value: unknown): string[] {
  if (typeof value === "string") return value.split(" ").filter(Boolean);
  if (Array.isArray(value)) return value.map(String);
  return [];
}

export async function consentPage(
  deps: {
    provider: OidcProvider;
    resourceAccess?: ((resource: string) => ResourceAccess | undefined) | undefined;
  },
  details: OidcInteraction,
  csrf: string,
): Promise<string> {
  const clientId = String(details.params.client_id ?? "");
  const client = await deps.provider.Client.find(clientId);
  const redirectUri = String(details.params.redirect_uri ?? "");
  const name = clientDisplayName(client, redirectUri);
  const target = redirectTarget(redirectUri) ?? "(unknown)";
  // A metadata-document client's id is an https URL: its host vouches for the document.
  const publisher = /^https:\/\//.test(clientId) ? URL.parse(clientId)?.host : undefined;
  const allLocal =
    (client?.redirectUris ?? []).length > 0 && (client?.redirectUris ?? []).every(isLocalRedirect);
  const scopes = listOf(details.params.scope).filter((s) => s !== "openid");
  const resources = listOf(details.params.resource);
  const reach = (resource: string): string => {
    const access = deps.resourceAccess?.(resource);
    if (access === undefined) return "";
    const summary = summarizeConsent(access, scopes);
    if (!summary.reachesServer) return " — <em>these scopes reach none of its tools</em>";
    const parts = ["every tool without a scope of its own"];
    if (summary.toolsUnlocked.length > 0)
      parts.push(`and ${summary.toolsUnlocked.map((t) => `<code>${escapeHtml(t)}</code>`).join(", ")}`);
    const withheld =
      summary.toolsWithheld.length === 0
        ? ""
        : `; not ${summary.toolsWithheld.map((t) => `<code>${escapeHtml(t)}</code>`).join(", ")}`;
    return ` — unlocks ${parts.join(" ")}${withheld}`;
  };
  return [
    "<h1>Authorize access</h1>",
    `<p class="lead"><strong>${escapeHtml(name)}</strong> asks to use MCP servers behind ${PRODUCT} on your behalf.</p>`,
    publisher === undefined
      ? ""
      : `<p class="muted">Its description is published by <strong>${escapeHtml(publisher)}</strong>.</p>`,
    `<p>After you decide, you will be sent to <strong>${escapeHtml(target)}</strong>.</p>`,
    allLocal
      ? '<p class="warn">This application receives the answer on your own computer. Approve only if you just started it yourself.</p>'
      : "",
    "<h2>Access requested</h2>",
    scopes.length === 0
      ? "<p>No specific scopes.</p>"
      : `<ul>${scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join("")}</ul>`,
    "<h2>To the server</h2>",
    `<ul>${resources.map((r) => `<li><code>${escapeHtml(r)}</code>${reach(r)}</li>`).join("")}</ul>`,
    `<form method="post" action="${INTERACTION_PREFIX}${escapeHtml(details.uid)}/confirm">`,
    `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`,
    '<div class="actions"><button type="submit" name="decision" value="allow">Allow</button>',
    '<button class="secondary" type="submit" name="decision" value="deny">Deny</button></div>',
    "</form>",
  ].join("\n");
}
