/**
 * The console's Servers page: each configured server's health as the gateways published it
 * (up, down with the error and a stdio server's last stderr lines, masked; or unknown), its
 * tools with their risk tier and pin state, and an Accept button for a tool whose definition
 * changed (flagged, or blocked with `pinning.onChange: block`). Accept does what `portcullis
 * tools accept <server> <tool> --hash <current>` does (src/admin/servers.ts), audited as
 * `console.tool_accepted`; the hash is the definition the page showed, so a definition that
 * changed again after the page was rendered is not accepted unseen.
 */
import {
  acceptToolChange,
  type ServerView,
  serverViews,
  type ToolView,
  toolViews,
} from "../admin/servers.js";
import type { ConsolePage, ConsoleRoutes } from "./access.js";
import { type Html, html, when } from "./html.js";
import { notice } from "./pages.js";

const HASH = /^[0-9a-f]{64}$/;

function healthOf(v: ServerView): Html {
  const state = html`<strong class="h-${v.state}">${v.state}</strong>`;
  return html`<p>Health: ${state}${v.since === null ? "" : html` since <span class="t">${v.since}</span>`}${
    v.reportedBy === null
      ? html` <span class="muted">(no running gateway has reported yet)</span>`
      : html` <span class="muted">(reported by ${v.reportedBy} at ${v.reportedAt})</span>`
  }</p>
${v.lastError === null ? "" : html`<p>Last error (${v.lastErrorAt}): ${v.lastError}</p>`}
${v.stderr.length === 0 ? "" : html`<p>Last stderr lines (secrets masked):</p><pre class="card" aria-label="Last stderr lines of ${v.name}">${v.stderr.join("\n")}</pre>`}`;
}

function toolRow(t: ToolView, csrf: string): Html {
  const state = t.blocked ? "changed — blocked" : t.status === "changed" ? "changed — flagged" : "pinned";
  return html`<tr data-tool="${t.server}/${t.tool}"><td><strong>${t.tool}</strong></td><td>${t.tier}${t.openWorld ? ", open world" : ""}</td><td>${state}</td>
<td>${t.changedFields.join(", ") || "—"}</td><td class="t">${when(t.acceptedAt)}${t.acceptedBy === null ? "" : ` by ${t.acceptedBy}`}</td>
<td>${
    t.status === "changed"
      ? html`<form class="inline" method="post" action="/console/servers/accept"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="server" value="${t.server}"><input type="hidden" name="tool" value="${t.tool}"><input type="hidden" name="hash" value="${t.currentHash}"><button type="submit" class="approve" aria-label="Accept ${t.tool} of ${t.server}">Accept</button></form>`
      : html`<span class="muted">—</span>`
  }</td></tr>`;
}

export function serversPage(views: readonly ServerView[], tools: readonly ToolView[], csrf: string): Html {
  if (views.length === 0) return html`<p class="muted">No servers are configured.</p>`;
  return html`<p>Health comes from the gateways using this store (also <code>portcullis servers status</code>).
A tool whose definition changed since it was pinned is flagged (or refused, with <code>pinning.onChange: block</code>)
until accepted; review it first with <code>portcullis tools show &lt;server&gt; &lt;tool&gt;</code>.</p>
${views.map((v) => {
  const own = tools.filter((t) => t.server === v.name);
  return html`<section data-server="${v.name}"><h2>${v.name} <span class="muted">${v.transport}</span></h2>
<p><code>${v.target}</code></p>
${healthOf(v)}
${
  own.length === 0
    ? html`<p class="muted">No tools seen yet (tools are pinned the first time a client lists them).</p>`
    : html`<table><thead><tr><th scope="col">Tool</th><th scope="col">Tier</th><th scope="col">Pin</th><th scope="col">Changed</th><th scope="col">Accepted</th><th scope="col">Action</th></tr></thead><tbody>
${own.map((t) => toolRow(t, csrf))}</tbody></table>`
}</section>`;
})}`;
}

export function registerServerRoutes(routes: ConsoleRoutes): void {
  const { deps } = routes;
  const { store, config } = deps;
  const servers: ConsolePage = {
    title: "Servers",
    path: "/console/servers",
    body: async (a) => {
      const [views, tools] = await Promise.all([serverViews(store, config), toolViews(store, config)]);
      return serversPage(views, tools, a.csrf);
    },
  };
  routes.get(servers.path, (_req, reply, a) => routes.show(reply, a, servers));
  routes.post("/console/servers/accept", async (_req, reply, a, f) => {
    const server = (f.get("server") ?? "").slice(0, 200);
    const tool = (f.get("tool") ?? "").slice(0, 500);
    const hash = f.get("hash") ?? "";
    if (server === "" || tool === "" || !HASH.test(hash))
      return routes.show(reply, a, servers, notice("Not accepted: the form is incomplete.", true), 400);
    const outcome = await acceptToolChange(
      store,
      { server, tool, expectedHash: hash, by: a.user.username },
      routes.auditFor(a),
    );
    switch (outcome.outcome) {
      case "accepted":
        return routes.show(
          reply,
          a,
          servers,
          notice(`Accepted ${tool} of ${server}: its current definition is now its pin.`),
        );
      case "already_pinned":
        return routes.show(
          reply,
          a,
          servers,
          notice(`${tool} of ${server} is already pinned: nothing to accept.`),
        );
      case "hash_mismatch":
        return routes.show(
          reply,
          a,
          servers,
          notice(
            `Not accepted: ${tool} of ${server} changed again since this page was shown. Review the new definition.`,
            true,
          ),
          409,
        );
      default:
        return routes.show(
          reply,
          a,
          servers,
          notice(`Not accepted: no tool ${tool} is recorded for ${server}.`, true),
          404,
        );
    }
  });
}
