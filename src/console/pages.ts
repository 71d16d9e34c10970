/**
 * The console's pages as pure functions from data to HTML bodies (./html.ts frames them).
 */

import type { Consent } from "../admin/clients.js";
import type { VerifyReport } from "../audit/verify.js";
import { describeKey } from "../authn/keyLifecycle.js";
import type { CompiledPolicy, PolicyDecision, RuleTrace } from "../authz/policy/types.js";
import type { MachineClient } from "../oauth/machineClients.js";
import type { LocalUser } from "../oauth/users.js";
import type { ApiKeyRecord, ApprovalRecord, StoredAuditRecord } from "../store/types.js";
import { bucketize, stackedBars } from "./charts.js";
import { type Html, html, raw, when } from "./html.js";
import { type People, who } from "./people.js";

const HOUR = 3_600_000;

function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

export function notice(message: string | null, error = false): Html {
  if (message === null) return html``;
  return html`<p class="notice${error ? " error" : ""}" role="${error ? "alert" : "status"}">${message}</p>`;
}

export function decision(d: string): Html {
  return html`<span class="d-${d}">${d}</span>`;
}

export function overviewPage(
  records: readonly StoredAuditRecord[],
  pending: number,
  people: People = new Map(),
  now = Date.now(),
): Html {
  const lastDay = records.filter((r) => r.at.getTime() > now - 24 * HOUR);
  const count = (d: string) => lastDay.filter((r) => r.decision === d).length;
  const hourChart = stackedBars("Last hour", bucketize(records, now, 5 * 60_000, 12), (d) =>
    d.toISOString().slice(11, 16),
  );
  const dayChart = stackedBars(
    "Last 24 hours",
    bucketize(records, now, HOUR, 24),
    (d) => `${d.toISOString().slice(11, 13)}h`,
  );
  const tools = new Map<string, { calls: number; refused: number }>();
  for (const r of lastDay) {
    if (r.rpcMethod !== "tools/call" || r.tool === null) continue;
    const key = `${r.server ?? "?"} · ${r.tool}`;
    const t = tools.get(key) ?? { calls: 0, refused: 0 };
    t.calls++;
    if (r.decision === "deny") t.refused++;
    tools.set(key, t);
  }
  const top = [...tools].sort((a, b) => b[1].calls - a[1].calls).slice(0, 10);
  const refusals = records.filter((r) => r.decision === "deny").slice(0, 10);
  return html`
<div class="stats">
  <div class="stat"><b>${lastDay.length}</b>requests (24 h)</div>
  <div class="stat"><b class="d-allow">${count("allow")}</b>allowed</div>
  <div class="stat"><b class="d-review">${count("review")}</b>sent to review</div>
  <div class="stat"><b class="d-deny">${count("deny")}</b>refused</div>
  <div class="stat"><b>${pending}</b><a href="/console/approvals">pending approvals</a></div>
</div>
<p class="legend"><span><i class="k-allow"></i>allow</span><span><i class="k-review"></i>review</span><span><i class="k-deny"></i>deny</span></p>
<div class="grid">
  <section><h2>Requests and decisions, last hour (5-minute buckets)</h2>${raw(hourChart)}</section>
  <section><h2>Requests and decisions, last 24 hours</h2>${raw(dayChart)}</section>
</div>
<div class="grid">
<section><h2>Top tools (24 h)</h2>
${
  top.length === 0
    ? html`<p class="muted">No tool calls yet.</p>`
    : html`<table><thead><tr><th scope="col">Server · tool</th><th scope="col">Decisions</th><th scope="col">Refused</th></tr></thead><tbody>
${top.map(([k, v]) => html`<tr><td>${k}</td><td>${v.calls}</td><td>${v.refused}</td></tr>`)}</tbody></table>`
}</section>
<section><h2>Recent refusals</h2>
${
  refusals.length === 0
    ? html`<p class="muted">No refusals.</p>`
    : html`<table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Reason</th></tr></thead><tbody>
${refusals.map(
  (r) =>
    html`<tr><td class="t">${when(r.at)}</td><td>${who(r.principal, people)}</td><td>${r.server ?? ""} ${r.tool ?? r.rpcMethod ?? ""}</td><td>${r.reason}</td></tr>`,
)}</tbody></table>`
}</section></div>`;
}

export function approvalsPage(
  pending: readonly ApprovalRecord[],
  recent: readonly ApprovalRecord[],
  csrf: string,
): Html {
  const ids = pending.map((a) => a.id).join(",");
  return html`
<p id="live-status" class="muted" aria-live="polite">Live updates every 2 seconds.</p>
<section data-live-approvals="${ids}"><h2>Pending (${pending.length})</h2>
${
  pending.length === 0
    ? html`<p>No calls are waiting for a decision.</p>`
    : html`<table><thead><tr><th scope="col">Approval</th><th scope="col">Caller</th><th scope="col">Server</th><th scope="col">Tool</th><th scope="col">Arguments (redacted)</th><th scope="col">Expires</th><th scope="col">Decision</th></tr></thead><tbody>
${pending.map(
  (
    a,
  ) => html`<tr data-approval="${a.id}"><td><code>${a.id}</code></td><td><span class="person" title="${a.principalId}">${a.principalName}</span></td><td>${a.server}</td><td><strong>${a.tool}</strong></td>
<td><pre>${JSON.stringify(a.argumentsSummary, null, 2)}</pre></td><td class="t">${when(a.expiresAt)}</td>
<td><form class="inline" method="post" action="/console/approvals/${a.id}/approve">${csrfField(csrf)}<button type="submit" class="approve" aria-label="Approve ${a.tool} call ${a.id}">Approve</button></form>
<form class="inline" method="post" action="/console/approvals/${a.id}/deny">${csrfField(csrf)}<button type="submit" class="deny" aria-label="Deny ${a.tool} call ${a.id}">Deny</button></form></td></tr>`,
)}</tbody></table>`
}</section>
<section><h2>Recently decided</h2>
${
  recent.length === 0
    ? html`<p class="muted">None yet.</p>`
    : html`<table><thead><tr><th scope="col">Approval</th><th scope="col">Caller</th><th scope="col">Tool</th><th scope="col">Status</th><th scope="col">By</th><th scope="col">Via</th><th scope="col">Decided</th></tr></thead><tbody>
${recent.map(
  (a) =>
    html`<tr><td><code>${a.id}</code></td><td>${a.principalName}</td><td>${a.server} · ${a.tool}</td><td>${a.status}</td><td>${a.decidedBy ?? "—"}</td><td>${a.decidedVia ?? "—"}</td><td class="t">${when(a.decidedAt)}</td></tr>`,
)}</tbody></table>`
}</section>`;
}

export function keysPage(keys: readonly ApiKeyRecord[], csrf: string, servers: readonly string[]): Html {
  return html`
<section><h2>Keys</h2>
<table><thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Env</th><th scope="col">Scopes</th><th scope="col">Status</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Uses</th><th scope="col">Created by</th><th scope="col">Actions</th></tr></thead><tbody>
${keys.map((k) => {
  const d = describeKey(k);
  const active = d.status === "active";
  return html`<tr><td>${k.name}</td><td><code>${k.id}</code></td><td>${k.environment}</td><td>${k.scopes.join(", ")}</td><td>${String(d.status)}</td><td class="t">${when(k.expiresAt)}</td><td class="t">${when(k.lastUsedAt)}</td><td>${k.useCount}</td><td>${k.createdBy === null ? "—" : html`<span class="person" title="${k.createdBy.principal}">${k.createdBy.name}</span>`}</td>
<td>${
    active
      ? html`<form class="inline" method="post" action="/console/keys/${k.id}/rotate">${csrfField(csrf)}<button type="submit" aria-label="Rotate key ${k.name}">Rotate</button></form>
<form class="inline" method="post" action="/console/keys/${k.id}/revoke">${csrfField(csrf)}<button type="submit" class="danger" aria-label="Revoke key ${k.name}">Revoke</button></form>`
      : html`<span class="muted">—</span>`
  }</td></tr>`;
})}</tbody></table></section>
<form method="post" action="/console/keys"><fieldset><legend>Create a key</legend>${csrfField(csrf)}
<label for="key-name">Name</label><input id="key-name" name="name" required maxlength="100">
<label for="key-servers">Servers (comma-separated <code>server</code> or <code>server:tool</code>; empty: all of ${servers.join(", ") || "none"})</label><input id="key-servers" name="servers">
<label for="key-expires">Expires in (e.g. 90d, 12h, 2w; empty: the default)</label><input id="key-expires" name="expires">
<p><button type="submit">Create key</button></p></fieldset></form>`;
}

export function secretShown(what: string, secret: string, extra: string): Html {
  return html`<div class="card"><p><strong>${what}</strong> ${extra}</p>
<p>Copy it now: it is shown only once and cannot be recovered.</p>
<code class="secret" id="secret">${secret}</code></div>`;
}

export function clientsPage(
  clients: readonly MachineClient[],
  consents: readonly Consent[],
  csrf: string,
): Html {
  return html`
<section><h2>Machine clients (client_credentials)</h2>
${
  clients.length === 0
    ? html`<p class="muted">None. Create one with <code>portcullis clients create</code>.</p>`
    : html`<table><thead><tr><th scope="col">Name</th><th scope="col">Client id</th><th scope="col">Auth</th><th scope="col">Servers</th><th scope="col">Scopes</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col">Action</th></tr></thead><tbody>
${clients.map(
  (
    c,
  ) => html`<tr><td>${c.name}</td><td><code>${c.clientId}</code></td><td>${c.authMethod}</td><td>${c.servers.join(", ")}</td><td>${c.scopes.join(" ")}</td><td class="t">${when(c.expiresAt)}</td><td>${c.revokedAt ? `revoked ${when(c.revokedAt)}` : "active"}</td>
<td>${c.revokedAt ? "" : html`<form class="inline" method="post" action="/console/clients/${c.clientId}/revoke">${csrfField(csrf)}<button type="submit" class="danger" aria-label="Revoke client ${c.name}">Revoke</button></form>`}</td></tr>`,
)}</tbody></table>`
}</section>
<section><h2>Remembered user consents</h2>
${
  consents.length === 0
    ? html`<p class="muted">No remembered consents.</p>`
    : html`<table><thead><tr><th scope="col">User</th><th scope="col">Client</th><th scope="col">Updated</th></tr></thead><tbody>
${consents.map((c) => html`<tr><td>${c.username === null ? c.accountId : html`<a href="/console/users/${encodeURIComponent(c.accountId)}" title="${c.accountId}">${c.username}</a>`}</td><td><code>${c.clientId}</code></td><td class="t">${when(c.updatedAt)}</td></tr>`)}</tbody></table>`
}</section>`;
}

export function usersPage(users: readonly LocalUser[], csrf: string, self: string): Html {
  return html`
<table><thead><tr><th scope="col">Username</th><th scope="col">E-mail</th><th scope="col">Groups</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Action</th></tr></thead><tbody>
${users.map(
  (
    u,
  ) => html`<tr><td><a href="/console/users/${encodeURIComponent(u.id)}" title="${u.id}">${u.username}</a></td><td>${u.email ?? "—"}</td><td>${u.groups.join(", ") || "—"}</td><td class="t">${when(u.createdAt)}</td><td>${u.disabledAt ? "disabled" : "active"}</td>
<td>${
    u.id === self
      ? html`<span class="muted">you</span>`
      : html`<form class="inline" method="post" action="/console/users/remove">${csrfField(csrf)}<input type="hidden" name="username" value="${u.username}"><button type="submit" class="danger" aria-label="Remove user ${u.username}">Remove</button></form>`
  }</td></tr>`,
)}</tbody></table>
<form method="post" action="/console/users"><fieldset><legend>Add a user</legend>${csrfField(csrf)}
<label for="user-name">Username</label><input id="user-name" name="username" required maxlength="128">
<label for="user-email">E-mail (optional)</label><input id="user-email" name="email" type="email">
<label for="user-groups">Groups (comma-separated)</label><input id="user-groups" name="groups">
<p class="muted">A password is generated and shown once.</p>
<p><button type="submit">Add user</button></p></fieldset></form>`;
}

export interface ExplainForm {
  principal: string;
  server: string;
  method: string;
  tool: string;
  tier: string;
  args: string;
}

export const EMPTY_EXPLAIN: ExplainForm = {
  principal: "method=api_key,kind=service",
  server: "",
  method: "tools/call",
  tool: "",
  tier: "",
  args: "{}",
};

/** The explain form, and its answer: the decision and every rule with file:line and why. */
function explainSection(
  csrf: string,
  f: ExplainForm,
  result: { decision: PolicyDecision; trace: readonly RuleTrace[] } | null,
  error: string | null,
): Html {
  const tierOpt = (v: string) =>
    html`<option value="${v}"${raw(f.tier === v ? " selected" : "")}>${v || "from annotations or pins"}</option>`;
  return html`<section><h2>Explain a decision</h2>
<form method="post" action="/console/policies/explain" class="filters">
<input type="hidden" name="csrf" value="${csrf}">
<div><label for="x-principal">Principal (k=v,…)</label><input id="x-principal" name="principal" value="${f.principal}"></div>
<div><label for="x-server">Server</label><input id="x-server" name="server" value="${f.server}" required></div>
<div><label for="x-method">Method</label><input id="x-method" name="method" value="${f.method}"></div>
<div><label for="x-tool">Tool, prompt or URI</label><input id="x-tool" name="tool" value="${f.tool}"></div>
<div><label for="x-tier">Tier</label><select id="x-tier" name="tier">${["", "read", "write", "destructive"].map(tierOpt)}</select></div>
<div><label for="x-args">Arguments (JSON)</label><input id="x-args" name="args" value="${f.args}"></div>
<div><button type="submit">Explain</button></div></form>
${error === null ? "" : html`<p class="notice error" role="alert">${error}</p>`}
${
  result === null
    ? ""
    : html`<p class="notice" role="status">Decision: <strong>${result.decision.effect.toUpperCase()}</strong> — ${result.decision.reason}${result.decision.ruleIds.length > 0 ? html` (rules: ${result.decision.ruleIds.join(", ")})` : ""}</p>
<table><thead><tr><th scope="col">Rule</th><th scope="col">Effect</th><th scope="col">Where</th><th scope="col">Matched</th><th scope="col">Why</th></tr></thead><tbody>
${result.trace.map((t) => html`<tr><td><code>${t.id}</code></td><td>${t.effect}</td><td>${t.file}:${t.line}</td><td>${t.matched ? "yes" : "no"}</td><td>${t.why}</td></tr>`)}</tbody></table>`
}</section>`;
}

export function policiesPage(
  policy: CompiledPolicy,
  files: ReadonlyArray<{ path: string; text: string | null }>,
  csrf: string,
  explain: {
    form: ExplainForm;
    result: { decision: PolicyDecision; trace: readonly RuleTrace[] } | null;
    error: string | null;
  } = {
    form: EMPTY_EXPLAIN,
    result: null,
    error: null,
  },
): Html {
  return html`
<div class="stats"><div class="stat"><b><code>${policy.version}</code></b>policy version</div><div class="stat"><b>${policy.ruleCount}</b>rules</div></div>
<p>Policy in force, hot-reloaded from these files. Edit the files to change it; test a change with
<code>portcullis policy test</code>. Explain what the policy in force decides for a request:</p>
${explainSection(csrf, explain.form, explain.result, explain.error)}
${files.map(
  (f) =>
    html`<section><h2><code>${f.path}</code></h2>${f.text === null ? html`<p class="muted">Not readable.</p>` : html`<pre class="card">${f.text}</pre>`}</section>`,
)}`;
}

/** `portcullis audit verify`'s verdict, shown above the search. */
export function chainStatus(report: VerifyReport): Html {
  const broken = report.chains.filter((c) => !c.ok);
  const records = report.chains.reduce((n, c) => n + c.records, 0);
  const open = report.chains.reduce((n, c) => n + c.uncheckpointed, 0);
  if (broken.length === 0 && report.problems.length === 0)
    return html`<p class="notice" role="status">Chain status: <strong>intact</strong> — ${records} records in ${report.chains.length} chains verified (hash links and signed checkpoints); ${open} written since the last checkpoint; ${report.unchained} records without a chain.</p>`;
  return html`<p class="notice error" role="alert">Chain status: <strong>BROKEN</strong> — ${broken.map(
    (c) =>
      html`chain <code>${c.chain}</code>: ${c.problem?.kind ?? "problem"} at #${c.problem?.seq ?? "?"} (${c.problem?.detail ?? ""}) `,
  )}${report.problems.map((p) => html`${p.kind}: ${p.detail} `)}. Run <code>portcullis audit verify</code> for the full report.</p>`;
}
