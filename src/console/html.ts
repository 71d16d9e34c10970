/**
 * The console's page frame: server-rendered HTML, no inline script or style (the stylesheet
 * and the one script come from /console/assets/), a strict Content-Security-Policy,
 * `frame-ancestors 'none'` against clickjacking, no caching, no referrer.
 */

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONSOLE_CSP,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form POSTs,
  // and the console's POSTs are checked against the real origin.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Template tag: interpolated values are escaped unless wrapped in {@link raw}. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function raw(value: string): Html {
  return new Html(value);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] as string;
  values.forEach((v, i) => {
    const text = Array.isArray(v)
      ? v.map((x) => (x instanceof Html ? x.value : escapeHtml(x))).join("")
      : v instanceof Html
        ? v.value
        : v === null || v === undefined || v === false
          ? ""
          : escapeHtml(v);
    out += text + (strings[i + 1] as string);
  });
  return new Html(out);
}

export const NAV: ReadonlyArray<[path: string, label: string]> = [
  ["/console", "Overview"],
  ["/console/approvals", "Approvals"],
  ["/console/keys", "API keys"],
  ["/console/clients", "OAuth clients"],
  ["/console/users", "Users"],
  ["/console/policies", "Policies"],
  ["/console/servers", "Servers"],
  ["/console/tasks", "Tasks"],
  ["/console/audit", "Audit"],
];

export interface Viewer {
  username: string;
  csrf: string;
}

/** A whole page; `viewer` null for pages shown before or instead of sign-in. */
export function layout(title: string, current: string | null, viewer: Viewer | null, body: Html): string {
  const nav =
    viewer === null
      ? ""
      : html`<nav aria-label="Console sections"><ul>${NAV.map(
          ([path, label]) =>
            html`<li><a href="${path}"${raw(path === current ? ' aria-current="page"' : "")}>${label}</a></li>`,
        )}</ul></nav>
<form class="signout" method="post" action="/console/logout"><input type="hidden" name="csrf" value="${viewer.csrf}"><span>${viewer.username}</span> <button type="submit">Sign out</button></form>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · Portcullis console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">Portcullis console</span>${nav}</header>
<main id="main" tabindex="-1"><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>`;
}

/** Formats an instant for tables: ISO without milliseconds, UTC. */
export function when(d: Date | null | undefined): string {
  return d ? `${d.toISOString().slice(0, 19).replace("T", " ")}Z` : "—";
}
