/**
 * The console's oversight pages: the overview (decisions over the last hour and day, pending
 * approvals), runtime review (approve or deny held calls through ReviewGate.decide, which
 * refuses self-approval and approval by the owner of the caller's credential: src/review/),
 * the audit search with the trail's verdict, and the JSON the approvals page polls.
 */
import { pendingApprovals } from "../admin/approvals.js";
import { searchAudit } from "../admin/auditSearch.js";
import type { ConsolePage, ConsoleRoutes } from "./access.js";
import { approvalsPage, auditPage, notice, overviewPage } from "./pages.js";

/** How many of the newest audit records the overview and the search read. */
const AUDIT_SCAN = 5000;
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
    return routes.page(reply, a, "Overview", "/console", overviewPage(records, pending.length));
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

  // ── audit search ────────────────────────────────────────────────────
  routes.get("/console/audit", async (req, reply, a) => {
    const q = req.query;
    const search = {
      decision: DECISIONS.includes(q.decision ?? "") ? (q.decision ?? "") : "",
      principal: (q.principal ?? "").slice(0, 200),
      server: (q.server ?? "").slice(0, 100),
      tool: (q.tool ?? "").slice(0, 200),
      text: (q.text ?? "").slice(0, 200),
    };
    const r = await searchAudit(store, deps.secret, search, { scan: AUDIT_SCAN, limit: 200 });
    return routes.page(reply, a, "Audit", "/console/audit", auditPage(r.found, search, r.scanned, r.verdict));
  });
}
