/**
 * The authorization server's pages (sign-in, consent, errors): one frame that names the
 * product, server-rendered, no script at all, and no external asset — the one small
 * stylesheet is inline and allowed by its hash in a strict Content-Security-Policy (CSP
 * Level 3 §8.3 hash-source), with `frame-ancestors 'none'` against clickjacking
 * (RFC 6819 §4.4.1.9). Every value from a request or a client registration is escaped.
 */
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";

export const PRODUCT = "Portcullis";

const STYLE = [
  ":root{--fg:#1d2330;--muted:#5b6475;--line:#d6dbe4;--accent:#1f5fbf;--bad:#c62828}",
  "*{box-sizing:border-box}",
  "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:#eef1f6}",
  "header{background:#14213d;color:#fff;padding:.75rem 1.5rem;font-weight:700;letter-spacing:.02em}",
  "header span{display:inline-block;width:.9rem;height:.9rem;margin-right:.5rem;vertical-align:-1px;border:2px solid #fff;border-top-width:5px;border-radius:2px}",
  "main{max-width:30rem;margin:2.5rem auto;padding:1.75rem 2rem;background:#fff;border:1px solid var(--line);border-radius:10px;box-shadow:0 2px 8px rgba(20,33,61,.08)}",
  "h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1rem;margin:1.25rem 0 .4rem}",
  "p{margin:.5rem 0}ul{margin:.25rem 0;padding-left:1.25rem}",
  ".lead{color:var(--muted)}.lead strong{color:var(--fg)}.muted{color:var(--muted);font-size:.85rem}",
  "label{display:block;margin:.9rem 0 .25rem;font-weight:600}",
  "input{display:block;width:100%;font:inherit;padding:.5rem .6rem;border:1px solid #8a93a6;border-radius:6px}",
  "input:focus,button:focus,a:focus{outline:3px solid #f0a500;outline-offset:2px}",
  ".actions{display:flex;gap:.6rem;margin-top:1.25rem}",
  "button,a.button{font:inherit;padding:.55rem 1.1rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;display:inline-block}",
  "button.secondary,a.button{background:#fff;color:var(--accent)}",
  ".error{color:var(--bad);background:#fdecea;border:1px solid #f3b8b2;border-radius:6px;padding:.5rem .75rem}",
  ".warn{background:#fff3cd;border:1px solid #f0d58c;border-radius:6px;padding:.5rem .75rem}",
  "code{background:#eef1f6;padding:0 .25rem;border-radius:3px;font-size:.9em;overflow-wrap:anywhere}",
  "footer{text-align:center;color:var(--muted);font-size:.8rem;margin-bottom:2rem}",
].join("\n");

const STYLE_HASH = createHash("sha256").update(STYLE).digest("base64");

/** Only this stylesheet: no script, no other style, no image, forms to this origin only. */
export const PAGE_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": PAGE_CSP,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A whole page: `body` is HTML (its values escaped by the caller). */
export function pageHtml(title: string, body: string): string {
  return [
    "<!DOCTYPE html>",
    `<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · ${PRODUCT}</title>`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<meta name="robots" content="noindex">`,
    `<style>${STYLE}</style></head><body>`,
    `<header><span aria-hidden="true"></span>${PRODUCT}</header>`,
    "<main>",
    body,
    "</main>",
    `<footer>${PRODUCT} · access to MCP servers</footer>`,
    "</body></html>",
  ].join("\n");
}

export function sendPage(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, { ...PAGE_HEADERS, "content-type": "text/html; charset=utf-8" });
  res.end(pageHtml(title, body));
}

/** An inline error, announced to screen readers, with the decision id an operator can look up. */
export function inlineError(message: string, decisionId: string | null): string {
  const reference =
    decisionId === null ? "" : ` <span class="muted">Reference <code>${escapeHtml(decisionId)}</code></span>`;
  return `<p class="error" role="alert">${escapeHtml(message)}${reference}</p>`;
}
