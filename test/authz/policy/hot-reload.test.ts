import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { loadPolicyFiles } from "../../../src/authz/policy/compile.js";
import { PolicyError } from "../../../src/authz/policy/types.js";
import { PolicyWatcher } from "../../../src/authz/policy/watch.js";
import { makeInput } from "./fixtures.js";

const ALLOW_GET = "rules:\n  - { id: get, effect: allow, match: { tools: [get_issue] } }\n";
const DENY_ALL = "rules:\n  - { id: nothing, effect: deny }\n";

function waitFor<T>(register: (resolve: (v: T) => void) => void, ms = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("timed out")), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

describe("policy hot reload", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-policy-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("loads directories in sorted order and refuses to start on an invalid policy", () => {
    const d = join(dir, "start");
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d);
    writeFileSync(join(d, "b.yml"), DENY_ALL);
    writeFileSync(join(d, "a.yaml"), ALLOW_GET);
    writeFileSync(join(d, "notes.txt"), "ignored");
    assert.deepEqual(loadPolicyFiles([d]).sources, [join(d, "a.yaml"), join(d, "b.yml")]);
    writeFileSync(join(d, "c.yaml"), "rules:\n  - id: x\n    effect: allow\n    when: nope\n");
    assert.throws(
      () => new PolicyWatcher([d]),
      (e: unknown) => e instanceof PolicyError && e.line === 4,
    );
  });

  it("applies a valid change and keeps the last good policy on an invalid one, reporting file:line", async () => {
    const file = join(dir, "policy.yaml");
    writeFileSync(file, ALLOW_GET);
    let onReload: ((v: string) => void) | undefined;
    let onError: ((e: PolicyError) => void) | undefined;
    const w = new PolicyWatcher([file], {
      debounceMs: 50,
      onReload: (p) => onReload?.(p.version),
      onError: (e) => onError?.(e),
    });
    try {
      const first = w.current();
      assert.equal(first.decide(makeInput()).effect, "allow");

      const reloaded = waitFor<string>((r) => {
        onReload = r;
      });
      writeFileSync(file, DENY_ALL);
      assert.notEqual(await reloaded, first.version);
      assert.equal(w.current().decide(makeInput()).effect, "deny");
      const good = w.current();

      const failed = waitFor<PolicyError>((r) => {
        onError = r;
      });
      writeFileSync(file, "rules:\n  - id: broken\n    effect: allow\n    match: { tolls: [x] }\n");
      const err = await failed;
      assert.deepEqual([err.file, err.line], [file, 4]);
      assert.match(
        err.message,
        /policy\.yaml:4: unknown key 'tolls' in rule 'broken' match: did you mean 'tools'\?/,
      );
      assert.equal(w.current(), good);

      // An editor's atomic save (write a temp file, rename over) is seen too.
      const again = waitFor<string>((r) => {
        onReload = r;
      });
      writeFileSync(join(dir, "policy.yaml.tmp"), ALLOW_GET);
      renameSync(join(dir, "policy.yaml.tmp"), file);
      assert.equal(await again, first.version);
      assert.equal(w.current().decide(makeInput()).effect, "allow");
    } finally {
      w.close();
    }
  });
});
