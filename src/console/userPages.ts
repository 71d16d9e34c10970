/**
 * The console's page for one local user: their groups (edit), password (reset: a generated
 * one, shown once), status (disable / enable) and the clients they consented to (revoke).
 * Every form is a CSRF-protected POST (./access.ts) to /console/users/:id/:action.
 */
import type { AccountConsent } from "../admin/users.js";
import type { LocalUser } from "../oauth/users.js";
import { type Html, html, when } from "./html.js";

function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

export function userPage(
  user: LocalUser,
  consents: readonly AccountConsent[],
  csrf: string,
  self: boolean,
): Html {
  const action = (a: string) => `/console/users/${encodeURIComponent(user.id)}/${a}`;
  const status = user.disabledAt === null ? "active" : `disabled since ${when(user.disabledAt)}`;
  return html`
<p><a href="/console/users">← All users</a></p>
<dl class="card facts">
<dt>Username</dt><dd>${user.username}</dd>
<dt>User id (<code>sub</code>)</dt><dd><code>${user.id}</code></dd>
<dt>E-mail</dt><dd>${user.email ?? "—"}</dd>
<dt>Groups</dt><dd>${user.groups.join(", ") || "—"}</dd>
<dt>Created</dt><dd>${when(user.createdAt)}</dd>
<dt>Status</dt><dd data-status>${status}</dd>
</dl>
<form method="post" action="${action("groups")}"><fieldset><legend>Groups</legend>${csrfField(csrf)}
<label for="user-groups">Groups (comma-separated; policy and console access read them at the next sign-in)</label>
<input id="user-groups" name="groups" value="${user.groups.join(", ")}">
<p><button type="submit">Save groups</button></p></fieldset></form>
<form method="post" action="${action("password")}"><fieldset><legend>Password</legend>${csrfField(csrf)}
<p class="muted">A new password is generated and shown once; the old one stops working.</p>
<p><button type="submit" class="danger" aria-label="Reset password of ${user.username}">Reset password</button></p></fieldset></form>
<form method="post" action="${action(user.disabledAt === null ? "disable" : "enable")}"><fieldset><legend>Access</legend>${csrfField(csrf)}
${
  user.disabledAt === null
    ? html`<p class="muted">Disabling refuses their sign-ins and revokes every grant, token and sign-in session they hold.</p>
${self ? html`<p class="muted">You cannot disable yourself.</p>` : html`<p><button type="submit" class="danger" aria-label="Disable ${user.username}">Disable</button></p>`}`
    : html`<p class="muted">Enabling lets them sign in again; revoked grants stay revoked.</p>
<p><button type="submit" aria-label="Enable ${user.username}">Enable</button></p>`
}</fieldset></form>
<section><h2>Consents</h2>
${
  consents.length === 0
    ? html`<p class="muted">No remembered consents.</p>`
    : html`<table><thead><tr><th scope="col">Client</th><th scope="col">Consented</th><th scope="col">Action</th></tr></thead><tbody>
${consents.map((c) => {
  const name = c.clientName ?? c.clientId;
  return html`<tr data-consent="${c.clientId}"><td><span title="${c.clientId}">${name}</span></td><td class="t">${when(c.updatedAt)}</td>
<td><form class="inline" method="post" action="${action("revoke-consent")}">${csrfField(csrf)}<input type="hidden" name="client" value="${c.clientId}"><button type="submit" class="danger" aria-label="Revoke consent to ${name}">Revoke</button></form></td></tr>`;
})}</tbody></table>`
}
<p class="muted">Revoking a consent also revokes the client's grants and tokens for this user; their next sign-in to it asks for consent again.</p></section>`;
}
