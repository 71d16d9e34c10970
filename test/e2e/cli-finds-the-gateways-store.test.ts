/**
 * The CLI never silently works on another store than the gateway's: it finds the config the
 * way `start` does (--config, PORTCULLIS_CONFIG, ./portcullis.yaml, else the embedded default
 * in the data directory), says on stderr which one it used when it was not named, warns before
 * creating a new store, and a read-only command refuses instead of leaving an empty store in
 * the wrong directory.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { CLI, cleanup, DEMO_SERVER, tempDir } from "../helpers/gateway.js";

const execFileP = promisify(execFile);

/** `portcullis <args>` run from `cwd`, with no PORTCULLIS_* variables unless given. */
async function cli(cwd: string, args: string[], extra: Record<string, string> = {}) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("PORTCULLIS_")) env[k] = v;
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...env, ...extra },
      timeout: 60_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
  }
}

function writeConfig(dir: string, name = "portcullis.yaml", dataDir = "data"): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      dataDir,
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
    }),
  );
  return file;
}

describe("the CLI finds the gateway's store the way the gateway does", () => {
  const root = tempDir("portcullis-discovery-");
  after(() => cleanup(root));

  it("refuses `keys list` where there is no store, and creates none", async () => {
    const empty = join(root, "empty");
    mkdirSync(empty);
    const r = await cli(empty, ["keys", "list", "--json"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no store at .*\.portcullis\/portcullis\.db: `keys list` creates none/);
    assert.match(r.stderr, /pass the --config <file>/);
    assert.equal(JSON.parse(r.stdout).error, "usage");
    assert.deepEqual(readdirSync(empty), [], "no store left behind");
    for (const args of [
      ["users", "list"],
      ["keys", "revoke", "abc"],
      ["audit", "verify"],
    ]) {
      const other = await cli(empty, args);
      assert.equal(other.code, 2, `${args.join(" ")}: ${other.stderr}`);
      assert.match(other.stderr, /no store at/);
    }
    assert.deepEqual(readdirSync(empty), []);
  });

  it("creates a store for `keys create` only after saying it is a new, empty one (stderr, not the JSON)", async () => {
    const fresh = join(root, "fresh");
    mkdirSync(fresh);
    const r = await cli(fresh, ["keys", "create", "--name", "k", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /using the embedded default configuration/);
    assert.match(
      r.stderr,
      /no store at .*fresh\/\.portcullis\/portcullis\.db yet: this creates a new, empty one/,
    );
    assert.equal(JSON.parse(r.stdout).name, "k", "stdout is still one JSON value");
    assert.ok(existsSync(join(fresh, ".portcullis", "portcullis.db")));
    const again = await cli(fresh, ["keys", "list", "--json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /no store/, "the store exists now");
    assert.equal((JSON.parse(again.stdout) as unknown[]).length, 1);
  });

  it("uses ./portcullis.yaml in the working directory, and says so", async () => {
    const project = join(root, "project");
    const file = writeConfig(project);
    const r = await cli(project, ["keys", "create", "--name", "found", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `using config ${file} \\(found in the working directory\\); store ${join(project, "data", "portcullis.db")}`,
      ),
    );
    assert.ok(!existsSync(join(project, ".portcullis")), "not the embedded default's store");
    // --no-config: the embedded default, though ./portcullis.yaml is there.
    const embedded = await cli(project, ["keys", "create", "--name", "embedded", "--no-config", "--json"]);
    assert.equal(embedded.code, 0, embedded.stderr);
    assert.doesNotMatch(embedded.stderr, /using/, "named on the command line: not announced");
    assert.ok(existsSync(join(project, ".portcullis", "portcullis.db")));
    // The same store as `--config <file>` from anywhere, which is named and so not announced.
    const named = await cli(root, ["keys", "list", "--config", file, "--json"]);
    assert.equal(named.code, 0, named.stderr);
    assert.doesNotMatch(named.stderr, /using/);
    assert.deepEqual(
      (JSON.parse(named.stdout) as { name: string }[]).map((k) => k.name),
      ["found"],
    );
  });

  it("uses ./portcullis.yml too, and refuses a directory holding both", async () => {
    const yml = join(root, "yml");
    writeConfig(yml, "portcullis.yml");
    const r = await cli(yml, ["keys", "create", "--name", "y", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /portcullis\.yml \(found in the working directory\)/);
    writeConfig(yml, "portcullis.yaml");
    const both = await cli(yml, ["keys", "list"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /both .*portcullis\.yaml and .*portcullis\.yml exist/);
  });

  it("prefers PORTCULLIS_CONFIG to ./portcullis.yaml, and --config to both", async () => {
    const here = join(root, "here");
    writeConfig(here, "portcullis.yaml", "here-data");
    const envFile = writeConfig(join(root, "env"), "gw.yaml");
    const flagFile = writeConfig(join(root, "flag"), "gw.yaml");
    const byEnv = await cli(here, ["keys", "create", "--name", "e", "--json"], {
      PORTCULLIS_CONFIG: envFile,
    });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.match(byEnv.stderr, new RegExp(`using config ${envFile} \\(from PORTCULLIS_CONFIG\\)`));
    assert.ok(existsSync(join(root, "env", "data", "portcullis.db")));
    const byFlag = await cli(here, ["keys", "create", "--name", "f", "--config", flagFile, "--json"], {
      PORTCULLIS_CONFIG: envFile,
    });
    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.ok(existsSync(join(root, "flag", "data", "portcullis.db")));
    assert.ok(!existsSync(join(here, "here-data")), "./portcullis.yaml came last");
  });

  it("reads --data-dir relative to the working directory, not to the config file", async () => {
    const file = writeConfig(join(root, "conf"), "gw.yaml");
    const work = join(root, "work");
    mkdirSync(work);
    const r = await cli(work, [
      "keys",
      "create",
      "--name",
      "d",
      "--config",
      file,
      "--data-dir",
      "mine",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(work, "mine", "portcullis.db")));
  });
});
