#!/usr/bin/env node
// Runs the compiled test suite (dist/test/**/*.test.js) with Node's built-in test runner.
// Usage: node scripts/run-tests.mjs [substring filter ...]
//
// Some tests drive dev tools that need Node 22 (the MCP conformance suite, the MCP Inspector CLI),
// installed apart in tools/node22 so they never shadow the project's Node 20. `npm ci` does not
// install them, so on a bare clone this runner installs them first (`npm ci --prefix tools/node22`)
// when a selected test needs them and the npm registry answers. If it cannot, those tests skip with
// a printed reason (CI=true makes them required: they fail instead). PORTCULLIS_TEST_INSTALL=0
// turns the installation off.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { node22ToolsMissing } from "./conformance.mjs";

/** Test files that use tools/node22 (see the skip checks at the top of each). */
const NEEDS_NODE22 = [
  "conformance.test.js",
  "conformance-authorization.test.js",
  "oauth-headless-clients.test.js",
];

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** Installs tools/node22 when a selected test needs it and it is missing; says why when it does not. */
function installNode22Tools(selected) {
  if (!selected.some((f) => NEEDS_NODE22.some((n) => f.endsWith(n)))) return;
  const missing = node22ToolsMissing(["server", "authorization", "inspector"]);
  if (missing === null) return;
  if (process.env.PORTCULLIS_TEST_INSTALL === "0") {
    console.log(`# tools/node22 not installed (PORTCULLIS_TEST_INSTALL=0): ${missing}`);
    return;
  }
  const ping = spawnSync(npm, ["ping"], { stdio: "ignore", timeout: 15_000 });
  if (ping.status !== 0) {
    console.log(`# tools/node22 not installed and the npm registry does not answer: ${missing}`);
    return;
  }
  console.log("# installing tools/node22 (Node 22 dev tools): npm ci --prefix tools/node22");
  const res = spawnSync(npm, ["ci", "--prefix", "tools/node22", "--no-audit", "--no-fund"], {
    stdio: "inherit",
    timeout: 600_000,
  });
  if (res.status !== 0) console.log(`# npm ci --prefix tools/node22 failed (${res.status ?? res.signal})`);
}

const filters = process.argv.slice(2);
const files = find("dist/test")
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
installNode22Tools(files);
const res = spawnSync(
  process.execPath,
  ["--test", "--test-reporter=spec", "--test-concurrency=2", "--enable-source-maps", ...files],
  { stdio: "inherit" },
);
process.exit(res.status ?? 1);
