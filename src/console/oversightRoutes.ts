/**
 * The console's oversight pages: the overview (decisions over the last hour and day, pending
 * approvals), runtime review (approve or deny held calls through ReviewGate.decide, which
 * refuses self-approval and approval by the owner of the caller's credential: src/review/),
 * the audit search (paged) with the trail's verdict and each record's detail, and the JSON
 * the approvals page polls.
 */
import { pendingApprovals } from "../admin/approvals.js";
import { auditRecordsOf, MAX_AUDIT_PAGE, searchAudit } from "../admin/auditSearch.js";
import type { ConsolePage, ConsoleRoutes } from "./access.js";
import { auditPage, auditRecordPage } from "./auditPages.js";
import { approvalsPage, notice, overviewPage } from "./pages.js";
import { peopleOf } from "./people.js";

/** How many of the newest audit records the overview reads. */
const AUDIT_SCAN = 5000;
/** Records on one page of the audit search, unless the page asks for another size (at most MAX_AUDIT_PAGE). */
const AUDIT_PAGE = 50;
const DECISIONS = ["allow", "review", "deny"];

export function registerOversightRoutes(routes: ConsoleRoutes): void {
  const { deps } = routes;
  const { store } = deps;

  // ── overview ────────────────────────────────────────────────────────
  routes.get("/console", async (_req, reply, a) => {
    const [records, pending] = await Promise.all([
      store.listAudit({ limit: AUDIT_SCAN }),
      store.listApprovals({ status: "pending" }),
    ]);
    const refusals = records.filter((r) => r.decision === "deny").slice(0, 10);
    const people = await peopleOf(
      store,
      refusals.map((r) => r.principal),
    );
    return routes.page(reply, a, "Overview", "/console", overviewPage(records, pending.length, people));
  });

  // ── approvals ───────────────────────────────────────────────────────
  const approvals: ConsolePage = {
    title: "Approvals",
    path: "/console/approvals",
    body: async (a) => {
      const [pending, all] = await Promise.all([
        pendingApprovals(store, 200),
        store.listApprovals({ limit: 50 }),
      ]);
      const recent = all.filter((x) => x.status !== "pending").slice(0, 20);
      return approvalsPage(pending, recent, a.csrf);
    },
  };
  routes.get(approvals.path, (_req, reply, a) => routes.show(reply, a, approvals));
  routes.get("/console/api/approvals", async (_req, reply) => {
    const pending = await pendingApprovals(store, 200);
    return reply.headers({ "cache-control": "no-store", "x-content-type-options": "nosniff" }).send({
      pending: pending.map((x) => ({
        id: x.id,
        tool: x.tool,
        server: x.server,
        expiresAt: x.expiresAt.toISOString(),
      })),
    });
  });
  routes.post("/console/approvals/:id/:action", async (req, reply, a) => {
    const { id = "", action } = req.params;
    if (action !== "approve" && action !== "deny")
      return routes.show(reply, a, approvals, notice("Unknown action.", true), 404);
    const outcome = await deps.review.decide(id, action === "approve" ? "approved" : "denied", {
      name: a.user.username,
      principalId: a.principalId,
      via: "console",
    });
    if (!outcome.ok)
      return routes.show(
        reply,
        a,
        approvals,
        notice(`Not decided: ${outcome.message}`, true),
        outcome.code === "unknown" ? 404 : 409,
      );
    const done = `${action === "approve" ? "Approved" : "Denied"} ${id} (${outcome.record.tool} on ${outcome.record.server}).`;
    return routes.show(reply, a, approvals, notice(done));
  });

  // ── audit search and records ────────────────────────────────────────
  routes.get("/console/audit", async (req, reply, a) => {
    const q = req.query;
    const search = {
      decision: DECISIONS.includes(q.decision ?? "") ? (q.decision ?? "") : "",
      principal: (q.principal ?? "").slice(0, 200),
      server: (q.server ?? "").slice(0, 100),
      tool: (q.tool ?? "").slice(0, 200),
      text: (q.text ?? "").slice(0, 200),
    };
    const size = seqParam(q.size) ?? AUDIT_PAGE;
    const before = seqParam(q.before);
    const after = seqParam(q.after);
    const cursor = before !== null ? { before } : after !== null ? { after } : null;
    const r = await searchAudit(store, deps.secret, search, { cursor, size });
    const people = await peopleOf(
      store,
      r.found.map((x) => x.principal),
    );
    const page = { size: Math.min(size, MAX_AUDIT_PAGE), older: r.older, newer: r.newer };
    return routes.page(
      reply,
      a,
      "Audit",
      "/console/audit",
      auditPage(r.found, search, page, r.verdict, people),
    );
  });
  routes.get("/console/audit/:id", async (req, reply, a) => {
    const id = req.params.id ?? "";
    const records = await auditRecordsOf(store, id);
    if (records.length === 0)
      return routes.page(
        reply,
        a,
        "Audit record",
        "/console/audit",
        notice(`No audit record ${id}.`, true),
        404,
      );
    const people = await peopleOf(
      store,
      records.map((x) => x.principal),
    );
    return routes.page(reply, a, "Audit record", "/console/audit", auditRecordPage(records, people));
  });
}

/** A positive integer query parameter, or null. */
function seqParam(value: string | undefined): number | null {
  if (value === undefined || !/^[1-9][0-9]{0,15}$/.test(value)) return null;
  return Number(value);
}
