#!/usr/bin/env node
// `npm run deps`: checks which way src/'s imports point (.dependency-cruiser.cjs, docs/architecture.md).
// dependency-cruiser is installed apart in tools/depcruise (it parses TypeScript with TypeScript 5;
// the project compiles with TypeScript 7). `npm ci` does not install it, so on a bare clone this
// script installs it first (`npm ci --prefix tools/depcruise`).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const bin = `tools/depcruise/node_modules/.bin/depcruise${process.platform === "win32" ? ".cmd" : ""}`;

if (!existsSync(bin)) {
  console.log("# installing dependency-cruiser: npm ci --prefix tools/depcruise");
  const res = spawnSync(npm, ["ci", "--prefix", "tools/depcruise", "--no-audit", "--no-fund"], {
    stdio: "inherit",
    timeout: 600_000,
  });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
const run = spawnSync(bin, ["src", "--config", ".dependency-cruiser.cjs", ...process.argv.slice(2)], {
  stdio: "inherit",
});
process.exit(run.status ?? 1);
