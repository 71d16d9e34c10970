/**
 * The pages behind a webhook's signed approve/deny links, `/review/<id>/approve|deny?exp=…&sig=…`.
 * GET only shows what would be decided and a button; POST (the button) decides. Link
 * scanners and chat unfurlers fetch with GET, so they can never approve. Server-rendered,
 * no script, a strict Content-Security-Policy (the one inline stylesheet allowed by hash),
 * `frame-ancestors 'none'` against clickjacking, no referrer (the URL is a capability).
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { ApprovalRecord } from "../store/types.js";
import { APPROVAL_ID } from "./binding.js";
import type { ReviewGate } from "./gate.js";
import { checkSignedLink, LINK_APPROVER, type LinkAction } from "./signedLinks.js";

const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}" +
  "dt{font-weight:600;margin-top:.5rem}pre{background:#eee;padding:.5rem;overflow:auto}" +
  "button{padding:.5rem 1rem;margin-top:1rem}.error{color:#a00}";
const STYLE_HASH = createHash("sha256").update(STYLE).digest("base64");

export const REVIEW_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  const html = [
    "<!DOCTYPE html>",
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<meta name="robots" content="noindex">`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(title)}</h1>`,
    body,
    "</body></html>",
  ].join("\n");
  return reply.code(status).headers(REVIEW_PAGE_HEADERS).type("text/html; charset=utf-8").send(html);
}

function details(a: ApprovalRecord): string {
  const row = (k: string, v: string) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`;
  return [
    "<dl>",
    row("Approval", `<code>${escapeHtml(a.id)}</code> (${escapeHtml(a.status)})`),
    row("Caller", `${escapeHtml(a.principalName)} <code>${escapeHtml(a.principalId)}</code>`),
    row(
      "Call",
      `<code>${escapeHtml(a.rpcMethod)}</code> <strong>${escapeHtml(a.tool)}</strong> on <code>${escapeHtml(a.server)}</code> (${escapeHtml(a.environment)})`,
    ),
    row("Arguments", `<pre>${escapeHtml(JSON.stringify(a.argumentsSummary, null, 2))}</pre>`),
    row("Decide before", escapeHtml(a.expiresAt.toISOString())),
    "</dl>",
  ].join("\n");
}

interface LinkRequest {
  Params: { id: string; action: string };
  Querystring: { exp?: string; sig?: string };
}

export function registerReviewLinkRoutes(app: FastifyInstance, gate: ReviewGate): void {
  const check = (req: { params: LinkRequest["Params"]; query: LinkRequest["Querystring"] }) => {
    const { id, action } = req.params;
    if ((action !== "approve" && action !== "deny") || !APPROVAL_ID.test(id)) return null;
    const result = checkSignedLink(gate.linkKey, action, id, req.query.exp, req.query.sig);
    return { id, action: action as LinkAction, result };
  };
  const refused = (reply: FastifyReply, reason: "bad_signature" | "expired" | null) =>
    page(
      reply,
      reason === "expired" ? 410 : 403,
      "Link not valid",
      reason === "expired"
        ? '<p class="error">This approval link has expired. Use the console or <code>portcullis approvals</code>.</p>'
        : '<p class="error">This link is not a valid approval link.</p>',
    );

  app.get<LinkRequest>("/review/:id/:action", async (req, reply) => {
    const link = check(req);
    if (link === null || !link.result.ok)
      return refused(reply, link?.result.ok === false ? link.result.reason : null);
    const approval = await gate.getApproval(link.id);
    if (approval === undefined) return refused(reply, null);
    const verb = link.action === "approve" ? "Approve" : "Deny";
    const pending = approval.status === "pending" && approval.expiresAt.getTime() > Date.now();
    const action = `/review/${encodeURIComponent(link.id)}/${link.action}?exp=${encodeURIComponent(req.query.exp ?? "")}&sig=${encodeURIComponent(req.query.sig ?? "")}`;
    return page(
      reply,
      200,
      `${verb} this call?`,
      [
        details(approval),
        pending
          ? `<form method="post" action="${escapeHtml(action)}"><button type="submit">${verb} ${escapeHtml(approval.id)}</button></form>`
          : `<p>This approval is ${escapeHtml(approval.status)}; there is nothing left to decide.</p>`,
        `<p>Your decision is recorded as made through a <em>${LINK_APPROVER}</em>.</p>`,
      ].join("\n"),
    );
  });

  app.post<LinkRequest>("/review/:id/:action", async (req, reply) => {
    const link = check(req);
    if (link === null || !link.result.ok)
      return refused(reply, link?.result.ok === false ? link.result.reason : null);
    const outcome = await gate.decide(link.id, link.action === "approve" ? "approved" : "denied", {
      name: LINK_APPROVER,
      via: "webhook",
    });
    if (!outcome.ok) {
      return page(
        reply,
        outcome.code === "unknown" ? 404 : 409,
        "Not decided",
        `<p class="error">${escapeHtml(outcome.message)}</p>`,
      );
    }
    const verb = link.action === "approve" ? "Approved" : "Denied";
    return page(
      reply,
      200,
      `${verb}`,
      `${details(outcome.record)}<p>${verb}. The caller's call ${link.action === "approve" ? "proceeds" : "is refused"}.</p>`,
    );
  });
}
