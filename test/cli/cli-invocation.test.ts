/**
 * How the banner names the CLI, decided by how it was invoked (src/cli/banner.ts
 * `cliInvocation`), and the shell quoting of what it prints.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cliInvocation, shellQuote } from "../../src/cli/banner.js";
import { cleanup, tempDir } from "../helpers/gateway.js";

describe("cliInvocation", () => {
  const root = tempDir("portcullis-invocation-");
  after(() => cleanup(root));
  const script = join(root, "pkg", "dist", "src", "cli", "main.js");
  mkdirSync(join(root, "pkg", "dist", "src", "cli"), { recursive: true });
  writeFileSync(script, "");

  it("is `portcullis` when the first portcullis on the PATH is this program (a global install's link)", () => {
    const bin = join(root, "bin");
    mkdirSync(bin);
    symlinkSync(script, join(bin, "portcullis"));
    assert.equal(cliInvocation({ PATH: bin }, join(bin, "portcullis")), "portcullis");
    assert.equal(cliInvocation({ PATH: bin }, script), "portcullis", "however it was started");
  });

  it("is not `portcullis` when another portcullis comes first on the PATH", () => {
    const other = join(root, "other");
    mkdirSync(other);
    writeFileSync(join(other, "portcullis"), "");
    assert.equal(cliInvocation({ PATH: `${other}:${join(root, "bin")}` }, script), `node ${script}`);
  });

  it("is `npx portcullis` from npx's download cache", () => {
    const cached = join(root, ".npm", "_npx", "0a1b", "node_modules", ".bin", "portcullis");
    assert.equal(cliInvocation({ PATH: "" }, cached), "npx portcullis");
  });

  it("is `npx --prefix <project> portcullis` under npm in a clone or a project that depends on it", () => {
    writeFileSync(join(root, "pkg", "package.json"), JSON.stringify({ name: "portcullis" }));
    const npmStart = { npm_lifecycle_event: "start", npm_package_json: join(root, "pkg", "package.json") };
    assert.equal(
      cliInvocation({ ...npmStart, PATH: "" }, script),
      `npx --prefix ${join(root, "pkg")} portcullis`,
    );
    const app = join(root, "my app");
    mkdirSync(join(app, "node_modules", ".bin"), { recursive: true });
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "my-app" }));
    writeFileSync(join(app, "node_modules", ".bin", "portcullis"), "");
    const npx = { npm_lifecycle_event: "npx", npm_package_json: join(app, "package.json") };
    assert.equal(cliInvocation({ ...npx, PATH: "" }, script), `npx --prefix '${app}' portcullis`);
    // An unrelated project's npm script running the CLI by path: npx there would not find it.
    const unrelated = join(root, "unrelated");
    mkdirSync(unrelated);
    writeFileSync(join(unrelated, "package.json"), JSON.stringify({ name: "unrelated" }));
    const other = { npm_lifecycle_event: "test", npm_package_json: join(unrelated, "package.json") };
    assert.equal(cliInvocation({ ...other, PATH: "" }, script), `node ${script}`);
  });
});

describe("shellQuote", () => {
  it("leaves plain words alone and single-quotes the rest, quotes included", () => {
    assert.equal(shellQuote("/srv/portcullis.yaml"), "/srv/portcullis.yaml");
    assert.equal(shellQuote("/home/a b/x.yaml"), "'/home/a b/x.yaml'");
    assert.equal(shellQuote("it's $HOME"), `'it'\\''s $HOME'`);
  });
});
