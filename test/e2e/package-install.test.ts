/**
 * Issue 12 item 3: Portcullis was not installable as a package. `npm pack` must give a tarball
 * with the built code and no tests, and `npm install -g <tarball>` a working `portcullis` that
 * starts the embedded default (SQLite, bundled demo server) in an empty directory.
 *
 * The tarball is packed from this build's dist/ (`--ignore-scripts`: prepack's clean build
 * would rewrite dist/ under the other tests; `.ci/run` packs with it). Under CI=true the
 * install compiles better-sqlite3 from source with the Node headers npm is configured with
 * (`nodedir`), never fetching a prebuilt binary from outside the npm registry; elsewhere it
 * installs as a user's `npm install -g` does (a prebuilt binary when one can be fetched).
 * Installing needs the npm registry: outside CI the install test skips with the reason when it
 * does not answer; with CI=true it is required.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { cleanup, tempDir } from "../helpers/gateway.js";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** This environment without the variables `npm test` sets for its own run (npm_config_*, npm_lifecycle_*…). */
function npmEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return spawnSync(npm, args, {
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? npmEnv(),
    encoding: "utf8",
    timeout: opts.timeout ?? 60_000,
  });
}

function registrySkip(): string | false {
  if (process.env.CI === "true") return false; // required in CI: the install fails loudly below
  if (run(["ping"], { timeout: 15_000 }).status === 0) return false;
  const reason = "the npm registry does not answer: installing the package tarball is skipped";
  console.log(`# ${reason}`);
  return reason;
}

describe("the npm package", () => {
  const dir = tempDir("portcullis-package-");
  let tarball: string;
  let files: string[];

  before(() => {
    const packed = run(["pack", "--ignore-scripts", "--json", "--pack-destination", dir]);
    assert.equal(packed.status, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    assert.ok(info);
    tarball = join(dir, info.filename);
    files = info.files.map((f) => f.path);
  });
  after(() => cleanup(dir));

  it("ships the built CLI, the default policy pack and the README, and no tests, bench or source maps", () => {
    for (const f of ["package.json", "README.md", "dist/src/cli/main.js", "dist/src/demo/server.js"])
      assert.ok(files.includes(f), `${f} is in the tarball`);
    assert.ok(
      files.some((f) => f.startsWith("policies/default/")),
      "the default policy pack is in the tarball",
    );
    const unwanted = files.filter(
      (f) =>
        /(^|\/)(test|bench|fixtures)\//.test(f) ||
        /\.test\.(js|ts)$/.test(f) ||
        f.endsWith(".map") ||
        f.endsWith(".ts") ||
        !/^(dist\/src\/|policies\/|package\.json$|README\.md$|LICENSE$)/.test(f),
    );
    assert.deepEqual(unwanted, []);
  });

  describe("installed globally from the tarball", { skip: registrySkip() }, () => {
    let prefix: string;
    let gateway: ChildProcess | undefined;
    after(async () => {
      if (gateway && gateway.exitCode === null) {
        const exited = new Promise((r) => gateway?.once("exit", r));
        gateway.kill("SIGINT");
        await exited;
      }
    });

    it("`npm install -g <tarball>` puts a `portcullis` on PATH that starts the embedded default in an empty directory", async () => {
      prefix = join(dir, "prefix");
      // The global config npm ci uses (--prefix alone would move it under the prefix).
      const globalconfig = run(["config", "get", "globalconfig"]).stdout.trim();
      const install = run(
        [
          "install",
          "--global",
          "--prefix",
          prefix,
          "--globalconfig",
          globalconfig,
          "--allow-scripts=better-sqlite3",
          "--prefer-offline",
          "--no-audit",
          "--no-fund",
          tarball,
        ],
        // In CI, better-sqlite3 is compiled from source: nothing is fetched from outside the registry.
        {
          env: npmEnv(process.env.CI === "true" ? { npm_config_build_from_source: "better-sqlite3" } : {}),
          timeout: 1_200_000,
        },
      );
      assert.equal(install.status, 0, `npm install -g failed:\n${install.stdout}\n${install.stderr}`);

      const bin = join(prefix, "bin", "portcullis");
      accessSync(bin, constants.X_OK);
      assert.match(readFileSync(bin, "utf8"), /^#!\/usr\/bin\/env node\n/);

      const empty = join(dir, "empty");
      mkdirSync(empty);
      const proc = spawn(bin, ["start", "--port", "0"], {
        cwd: empty,
        env: npmEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      gateway = proc;
      let banner = "";
      proc.stderr?.on("data", (d) => {
        banner += d.toString();
      });
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === "portcullis listening") resolve(entry.url as string);
        });
        proc.on("exit", (code) => reject(new Error(`portcullis start exited ${code}: ${banner}`)));
      });
      for (let i = 0; i < 100 && !/^ {2}pcl_dev_\S+$/m.test(banner); i++)
        await new Promise((r) => setTimeout(r, 50));
      const key = /^ {2}(pcl_dev_\S+)$/m.exec(banner)?.[1];
      assert.ok(key, `the banner prints the development key:\n${banner}`);

      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);

      const client = new Client({ name: "package-install-e2e", version: "1.0.0" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${url}/mcp/demo`), {
          requestInit: { headers: { authorization: `Bearer ${key}` } },
        }),
      );
      try {
        const { tools } = await client.listTools();
        assert.ok(tools.length > 0, "the bundled demo server's tools are listed");
      } finally {
        await client.close();
      }
    });
  });
});
