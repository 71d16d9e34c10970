/**
 * The console's audit pages: the search (one page of records, newest first, with links to the
 * older and newer pages: keyset pagination by the store's sequence number, src/admin/auditSearch.ts)
 * and one record's detail, every stored field, linkable by its decision id
 * (/console/audit/<decision id>) or its sequence number (/console/audit/<seq>). People are
 * shown by name (./people.ts).
 */
import type { AuditSearch } from "../admin/auditSearch.js";
import { recordTask } from "../audit/taskDetail.js";
import type { VerifyReport } from "../audit/verify.js";
import type { StoredAuditRecord } from "../store/types.js";
import { type Html, html, raw, when } from "./html.js";
import { chainStatus, decision } from "./pages.js";
import { type People, userIdOf, who } from "./people.js";

/** The path of a record's detail page: by decision id when it has one. */
export function recordPath(r: StoredAuditRecord): string {
  return `/console/audit/${encodeURIComponent(r.decisionId ?? String(r.seq))}`;
}

function pageLink(
  f: AuditSearch,
  size: number,
  cursor: Record<string, number>,
  label: string,
  rel: string,
): Html {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== "") q.set(k, v);
  q.set("size", String(size));
  for (const [k, v] of Object.entries(cursor)) q.set(k, String(v));
  return html`<a rel="${rel}" href="/console/audit?${q.toString()}">${label}</a>`;
}

export function auditPage(
  records: readonly StoredAuditRecord[],
  f: AuditSearch,
  page: { size: number; older: number | null; newer: number | null },
  verdict: VerifyReport,
  people: People,
): Html {
  const opt = (v: string) =>
    html`<option value="${v}"${raw(f.decision === v ? " selected" : "")}>${v || "any"}</option>`;
  const nav = html`<nav class="pager" aria-label="Audit pages">${
    page.newer === null
      ? html`<span class="muted">Newer</span>`
      : pageLink(f, page.size, { after: page.newer }, "← Newer", "prev")
  } ${page.newer === null ? "" : pageLink(f, page.size, {}, "Newest", "first")} ${
    page.older === null
      ? html`<span class="muted">Older</span>`
      : pageLink(f, page.size, { before: page.older }, "Older →", "next")
  }</nav>`;
  return html`
${chainStatus(verdict)}
<form method="get" action="/console/audit" class="filters" role="search">
<div><label for="f-decision">Decision</label><select id="f-decision" name="decision">${["", "allow", "review", "deny"].map(opt)}</select></div>
<div><label for="f-principal">Who contains (name or id)</label><input id="f-principal" name="principal" value="${f.principal}"></div>
<div><label for="f-server">Server</label><input id="f-server" name="server" value="${f.server}"></div>
<div><label for="f-tool">Tool</label><input id="f-tool" name="tool" value="${f.tool}"></div>
<div><label for="f-text">Reason contains</label><input id="f-text" name="text" value="${f.text}"></div>
<div><label for="f-size">Per page</label><input id="f-size" name="size" type="number" min="1" max="200" value="${page.size}"></div>
<div><button type="submit">Search</button></div></form>
<p class="muted">${records.length === 0 ? "No matching records." : html`Records #${records.at(-1)?.seq} to #${records[0]?.seq}, newest first.`}</p>
${nav}
<table><thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Decision</th><th scope="col">Who</th><th scope="col">Server</th><th scope="col">Method · tool</th><th scope="col">Reason</th><th scope="col">Rules · policy</th></tr></thead><tbody>
${records.map(
  (r) =>
    html`<tr data-seq="${r.seq}"><td><a href="${recordPath(r)}" aria-label="Record ${r.seq}">${r.seq}</a></td><td class="t">${when(r.at)}</td><td>${decision(r.decision)}</td><td>${who(r.principal, people)}</td><td>${r.server ?? "—"}</td><td>${r.rpcMethod ?? ""} ${r.tool ?? ""}</td><td>${r.reason}</td><td>${(r.ruleIds ?? []).join(", ")} <span class="muted">${r.policyVersion ?? ""}</span></td></tr>`,
)}</tbody></table>
${nav}`;
}

function json(value: unknown): Html {
  return value === null || value === undefined
    ? html`<span class="muted">none</span>`
    : html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
}

/** Every field of one record (the arguments as stored: redacted by `audit.arguments`). */
function recordDetail(r: StoredAuditRecord, people: People): Html {
  const userId = userIdOf(r.principal);
  const person = userId === null ? undefined : people.get(userId);
  const task = recordTask(r.detail);
  const row = (label: string, value: unknown) =>
    html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`;
  return html`<section data-record="${r.seq}"><h2>Record #${r.seq}</h2>
<table class="detail"><tbody>
${row("Decision", decision(r.decision))}
${row("Reason", r.reason)}
${row("When", when(r.at))}
${row("Decision id", r.decisionId ? html`<code>${r.decisionId}</code>` : "—")}
${row("Who", person === undefined ? (r.principal ?? "—") : html`${person.username} <span class="muted">(${person.email ?? "no e-mail"})</span>`)}
${row("Principal id", r.principal ? html`<code>${r.principal}</code>` : "—")}
${row("Authentication method", r.method ?? "—")}
${row("Credential", r.credentialId ? html`<code>${r.credentialId}</code>` : "—")}
${row("Task", task.taskId ? html`<code>${task.taskId}</code>` : "—")}
${row("Actor (RFC 8693, current first)", task.actor ? html`${task.actor.map((a, i) => html`${i > 0 ? " ← " : ""}<code>${a}</code>`)}` : "—")}
${row("Environment", r.environment)}
${row("Server", r.server ?? "—")}
${row("JSON-RPC method", r.rpcMethod ?? "—")}
${row("Tool, prompt or resource", r.tool ?? "—")}
${row("Rules", (r.ruleIds ?? []).length === 0 ? "—" : html`${(r.ruleIds ?? []).map((id) => html`<code>${id}</code> `)}`)}
${row("Policy version", r.policyVersion ? html`<code>${r.policyVersion}</code>` : "—")}
${row("Latency", `${r.latencyUs} µs`)}
${row("Arguments (as stored, redacted)", json(r.arguments))}
${row("Detail", json(r.detail))}
${row("Chain", r.chain ? html`<code>${r.chain}</code> position ${r.chainSeq ?? "?"}` : "not chained (written before chaining)")}
${row("Previous hash", r.prevHash ? html`<code>${r.prevHash}</code>` : "—")}
${row("Hash", r.hash ? html`<code>${r.hash}</code>` : "—")}
</tbody></table></section>`;
}

export function auditRecordPage(records: readonly StoredAuditRecord[], people: People): Html {
  return html`<p><a href="/console/audit">← Audit search</a></p>
${records.length > 1 ? html`<p class="muted">${records.length} records share this decision id, oldest first.</p>` : ""}
${records.map((r) => recordDetail(r, people))}`;
}
