/**
 * The console's static stylesheet and script, served from /console/assets/ (the CSP allows
 * `'self'` only). The script is progressive: every page works without it; on the approvals
 * queue it polls /console/api/approvals and reloads the list when pending approvals change.
 */

export const CONSOLE_CSS = `
:root{--fg:#1d2330;--muted:#5b6475;--line:#d6dbe4;--bg:#f6f7f9;--accent:#1f5fbf;--allow:#2e7d32;--deny:#c62828;--review:#b26a00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem}
.skip:focus{left:.5rem;z-index:10}
header{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;background:#14213d;color:#fff;padding:.5rem 1.5rem}
header .brand{font-weight:700;margin-right:1rem}
header nav ul{display:flex;flex-wrap:wrap;gap:.25rem;list-style:none;margin:0;padding:0}
header nav a{color:#fff;text-decoration:none;padding:.35rem .6rem;border-radius:4px;display:inline-block}
header nav a[aria-current=page]{background:#fff;color:#14213d;font-weight:600}
header nav a:hover{text-decoration:underline}
.signout{margin-left:auto;display:flex;gap:.5rem;align-items:center}
main{max-width:72rem;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f6;font-weight:600}
td{overflow-wrap:anywhere}td.t{white-space:nowrap;overflow-wrap:normal}
td pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:28rem;font-size:.85rem}
code{font-size:.9em;background:#eef1f6;padding:0 .2rem;border-radius:3px}
button{font:inherit;padding:.35rem .8rem;border:1px solid #8a93a6;border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:#eef1f6}
button.approve{border-color:var(--allow);color:var(--allow)}
button.deny,button.danger{border-color:var(--deny);color:var(--deny)}
form.inline{display:inline}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:1rem;margin:1rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}
.stats{display:flex;gap:1rem;flex-wrap:wrap}
.stat{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.stat b{display:block;font-size:1.4rem}
label{display:block;margin:.5rem 0 .2rem;font-weight:600}
input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #8a93a6;border-radius:4px;width:100%;max-width:28rem;background:#fff}
fieldset{border:1px solid var(--line);border-radius:6px;background:#fff;margin:1rem 0;padding:.5rem 1rem 1rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end}
.filters div{min-width:10rem}
.filters input,.filters select{width:12rem}
.notice{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;background:#e8f0fe;border:1px solid #b6c8f0}
.notice.error{background:#fdecea;border-color:#f3b8b2}
.secret{font-size:1rem;padding:.5rem;display:block;background:#fff8e1;border:1px solid #f0d58c;word-break:break-all}
.muted{color:var(--muted)}
.d-allow{color:var(--allow)}.d-deny{color:var(--deny)}.d-review{color:var(--review)}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
svg .bar-allow{fill:var(--allow)}svg .bar-deny{fill:var(--deny)}svg .bar-review{fill:var(--review)}
svg .axis{stroke:#8a93a6;stroke-width:1}svg text{font-size:11px;fill:var(--muted)}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}
.pager{display:flex;gap:1rem;margin:.5rem 0}
table.detail th{width:14rem;white-space:nowrap}table.detail td pre{max-width:none}
.person{text-decoration:underline dotted;cursor:help}
.legend .k-allow{background:var(--allow)}.legend .k-deny{background:var(--deny)}.legend .k-review{background:var(--review)}
`;

export const CONSOLE_JS = `"use strict";
(function () {
  var queue = document.querySelector("[data-live-approvals]");
  if (!queue) return;
  var shown = queue.getAttribute("data-live-approvals");
  var status = document.getElementById("live-status");
  function check() {
    fetch("/console/api/approvals", { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (body) {
        var ids = body.pending.map(function (a) { return a.id; }).join(",");
        if (status) status.textContent = "Live: checked " + new Date().toLocaleTimeString();
        if (ids !== shown) location.replace("/console/approvals"); // a GET, never a form re-post
      })
      .catch(function () { if (status) status.textContent = "Live updates paused (cannot reach the gateway)"; });
  }
  setInterval(check, 2000);
})();
`;
