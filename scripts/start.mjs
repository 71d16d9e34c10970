#!/usr/bin/env node
// `npm start [-- <start options>]`: `portcullis start` from a clone. Compiles the TypeScript only
// when a source, tsconfig.json or package.json is newer than the last build (scripts/build.mjs),
// and says so; otherwise starts at once. Extra arguments go to `portcullis start`
// (`npm start -- --port 9090`).
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compile, ROOT, staleReason } from "./build.mjs";

const reason = staleReason();
if (reason !== null) {
  process.stderr.write(`compiling TypeScript (${reason})…\n`);
  const status = compile();
  if (status !== 0) {
    process.stderr.write(`the TypeScript build failed (tsc exited ${status}): not starting\n`);
    process.exit(status);
  }
}

// The CLI reads its arguments from process.argv: run it in this process, as `portcullis start …`.
const cli = join(ROOT, "dist", "src", "cli", "main.js");
process.argv = [process.argv[0], cli, "start", ...process.argv.slice(2)];
await import(pathToFileURL(cli).href);
