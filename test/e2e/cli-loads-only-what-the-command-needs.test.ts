/**
 * Issue 12 item 7: every CLI call cost ~2 s of CPU on a loaded machine, `--help` included,
 * because main.ts loaded every command module and, through them, the whole gateway (fastify,
 * oidc-provider, CEL, secretlint, …). Now only the command named on the command line is loaded.
 * The CLI runs here under a module loader hook that records every module it resolves.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { CLI, cleanup, tempDir } from "../helpers/gateway.js";

const dir = tempDir();

/** node --import of a module that registers a resolve hook appending each URL to $LOADED_MODULES. */
const HOOKS = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.LOADED_MODULES, resolved.url + "\\n");
  return resolved;
}
`;
writeFileSync(join(dir, "hooks.mjs"), HOOKS);
writeFileSync(
  join(dir, "register.mjs"),
  `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`,
);

let runs = 0;
/** Runs `portcullis <args>` and returns the URLs of the modules it loaded. */
function loadedBy(args: string[]): { code: number | null; stdout: string; modules: string[] } {
  const log = join(dir, `loaded-${++runs}.txt`);
  writeFileSync(log, "");
  const r = spawnSync(
    process.execPath,
    ["--import", pathToFileURL(join(dir, "register.mjs")).href, CLI, ...args],
    {
      cwd: dir,
      env: { ...process.env, LOADED_MODULES: log },
      encoding: "utf8",
      timeout: 60_000,
    },
  );
  return { code: r.status, stdout: r.stdout, modules: readFileSync(log, "utf8").split("\n").filter(Boolean) };
}

/** Packages and modules of the gateway that a management command has no use for. */
const GATEWAY = [
  /\/node_modules\/fastify\//,
  /\/node_modules\/oidc-provider\//,
  /\/node_modules\/@bufbuild\/cel\//,
  /\/node_modules\/@secretlint\//,
  /\/node_modules\/undici\//,
  /\/node_modules\/prom-client\//,
  /\/dist\/src\/gateway\.js$/,
];

function loadedOf(modules: string[], patterns: RegExp[]): string[] {
  return modules.filter((m) => patterns.some((p) => p.test(m)));
}

describe("the CLI loads only what the command it runs needs", () => {
  after(() => cleanup(dir));

  it("`portcullis --help` loads commander and nothing of the gateway or the store", () => {
    const r = loadedBy(["--help"]);
    assert.equal(r.code, 0);
    assert.ok(
      r.modules.some((m) => m.includes("/node_modules/commander/")),
      "the hook sees packages",
    );
    assert.deepEqual(
      loadedOf(r.modules, [...GATEWAY, /\/node_modules\/(kysely|better-sqlite3|pg|zod|yaml)\//]),
      [],
    );
    // Every command is listed all the same.
    for (const name of [
      "start",
      "init",
      "doctor",
      "keys",
      "users",
      "clients",
      "tools",
      "policy",
      "approvals",
      "audit",
      "servers",
      "oauth",
    ])
      assert.match(r.stdout, new RegExp(`^  ${name} `, "m"));
  });

  it("`portcullis keys list` opens the store without loading the gateway", () => {
    // A store to list (keys list refuses to create one): made by a command not measured here.
    assert.equal(loadedBy(["keys", "create", "--name", "probe", "--data-dir", join(dir, "data")]).code, 0);
    const r = loadedBy(["keys", "list", "--data-dir", join(dir, "data")]);
    assert.equal(r.code, 0, r.stdout);
    assert.ok(
      r.modules.some((m) => m.includes("/node_modules/kysely/")),
      "the store is loaded",
    );
    assert.deepEqual(loadedOf(r.modules, GATEWAY), []);
  });

  it("`portcullis policy --help` and `portcullis start --help` do not load the gateway", () => {
    for (const args of [
      ["policy", "--help"],
      ["start", "--help"],
    ]) {
      const r = loadedBy(args);
      assert.equal(r.code, 0);
      assert.deepEqual(
        loadedOf(r.modules, [/\/node_modules\/(fastify|oidc-provider)\//, /\/dist\/src\/gateway\.js$/]),
        [],
      );
    }
  });

  it("the top-level help gives each command the description its own help gives", () => {
    const top = loadedBy(["--help"]).stdout;
    for (const [, name, first] of top.matchAll(/^ {2}([a-z]+) +(\S.*)$/gm)) {
      if (name === "help") continue;
      const own = loadedBy([name as string, "--help"]).stdout;
      // The listing wraps long descriptions: compare the words of its first line.
      assert.ok(own.replace(/\s+/g, " ").includes((first as string).trim()), `${name}: ${first}`);
    }
  });
});
