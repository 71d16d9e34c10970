/**
 * Issue 12 item 3: `npm start` ran tsc on every start (30 s of silence on a loaded machine
 * before the banner). In a built clone it now starts at once; it compiles only when a source
 * changed, and says so. Extra arguments reach `portcullis start` (`npm start -- --port 0`).
 *
 * The clone is a directory with the project's sources, scripts, policies and manifests, and a
 * link to its node_modules (what `npm ci` gives it).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, statSync, symlinkSync, utimesSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { cleanup, tempDir } from "../helpers/gateway.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** This environment without the variables `npm test` sets for its own run. */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) e[k] = v;
  return e;
}

/** `npm start -- --port 0` in dir until the gateway listens; its stderr (where the banner goes), then stopped. */
async function npmStart(dir: string): Promise<string> {
  const proc = spawn(npm, ["start", "--", "--port", "0"], {
    cwd: dir,
    env: env(),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: npm, the shell and the gateway are stopped together
  });
  let stderr = "";
  proc.stderr.on("data", (d) => {
    stderr += d.toString();
  });
  const exited = new Promise((r) => proc.once("exit", r));
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: proc.stdout }).on("line", (line) => {
        if (line.includes('"msg":"portcullis listening"')) resolve();
      });
      proc.once("exit", (code) => reject(new Error(`npm start exited ${code}: ${stderr}`)));
    });
    for (let i = 0; i < 100 && !stderr.includes("Portcullis is running"); i++)
      await new Promise((r) => setTimeout(r, 50));
    return stderr;
  } finally {
    if (proc.exitCode === null && proc.pid !== undefined) process.kill(-proc.pid, "SIGINT");
    await exited;
  }
}

describe("`npm start` in a built clone", () => {
  let clone: string;
  const stamp = () => join(clone, "dist", ".build-stamp");
  const cli = () => join(clone, "dist", "src", "cli", "main.js");

  before(() => {
    clone = tempDir("portcullis-clone-");
    for (const p of ["src", "scripts", "policies", "package.json", "tsconfig.json"])
      cpSync(resolve(p), join(clone, p), { recursive: true });
    symlinkSync(resolve("node_modules"), join(clone, "node_modules"));
    const build = spawnSync(npm, ["run", "build", "--silent"], { cwd: clone, env: env(), encoding: "utf8" });
    assert.equal(build.status, 0, `${build.stdout}\n${build.stderr}`);
  });
  after(() => cleanup(clone));

  it("starts without compiling when nothing changed, and passes its arguments to `portcullis start`", async () => {
    const built = { stamp: statSync(stamp()).mtimeMs, cli: statSync(cli()).mtimeMs };
    const banner = await npmStart(clone);
    assert.match(banner, /Portcullis is running/);
    assert.doesNotMatch(banner, /compiling TypeScript/);
    assert.deepEqual(
      { stamp: statSync(stamp()).mtimeMs, cli: statSync(cli()).mtimeMs },
      built,
      "tsc did not run",
    );
  });

  it("compiles first, and says so, when a source changed", async () => {
    const before = statSync(stamp()).mtimeMs;
    const now = new Date();
    utimesSync(join(clone, "src", "version.ts"), now, now);
    const banner = await npmStart(clone);
    assert.match(banner, /compiling TypeScript \(sources changed\)…/);
    assert.match(banner, /Portcullis is running/);
    assert.ok(statSync(stamp()).mtimeMs > before, "a new build was stamped");
  });
});
