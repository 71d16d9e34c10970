#!/usr/bin/env node
// Compiles the TypeScript (tsconfig.json: src, test, bench) into dist/ and, when tsc succeeds,
// writes dist/.build-stamp. `npm start` (scripts/start.mjs) compiles only when an input is newer
// than that stamp, so starting a built clone does not run tsc again.
//
// Usage: node scripts/build.mjs [--clean]
//   --clean  remove dist/ first (`npm pack` builds this way: nothing stale is shipped)
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const STAMP = join(ROOT, "dist", ".build-stamp");
/** What the build reads: tsconfig.json's `include` directories, and the files that configure it. */
const INPUT_DIRS = ["src", "test", "bench"];
const INPUT_FILES = ["tsconfig.json", "package.json"];

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

/** The newest modification time under dir; directories count too (a deleted or renamed file changes its directory). */
function newestUnder(dir) {
  let newest = mtime(dir) ?? 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestUnder(p) : (mtime(p) ?? 0));
  }
  return newest;
}

/** Why a compile is needed, or null when dist/ is up to date with every input. */
export function staleReason() {
  const stamp = mtime(STAMP);
  if (stamp === null) return "no previous build";
  for (const f of INPUT_FILES) if ((mtime(join(ROOT, f)) ?? 0) > stamp) return `${f} changed`;
  for (const d of INPUT_DIRS) {
    if (mtime(join(ROOT, d)) !== null && newestUnder(join(ROOT, d)) > stamp) return "sources changed";
  }
  return null;
}

/** Runs tsc; on success writes the stamp. Returns tsc's exit status. */
export function compile({ clean = false } = {}) {
  if (clean) rmSync(join(ROOT, "dist"), { recursive: true, force: true });
  // Taken before tsc starts: a source saved during the compile makes the next start compile again.
  const started = new Date();
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const res = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.json")], {
    cwd: ROOT,
    stdio: "inherit",
  });
  const status = res.status ?? 1;
  if (status === 0) {
    writeFileSync(STAMP, `${started.toISOString()}\n`);
    utimesSync(STAMP, started, started);
  }
  return status;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = compile({ clean: process.argv.includes("--clean") });
}
