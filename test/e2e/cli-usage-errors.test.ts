/**
 * Issue 12 item 7: usage errors exited 1 where docs/cli.md promises 2. Commander's own errors
 * (unknown option, missing option or argument, unknown command, bad choice, no command) exit 2
 * with the usage; `--help` and `--version` exit 0; a failure at run time exits 1.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { cleanup, runCli, tempDir } from "../helpers/gateway.js";

describe("CLI exit codes: 2 for usage errors, 0 for help, 1 for failures", () => {
  const dir = tempDir();
  after(() => cleanup(dir));
  const store = ["--data-dir", join(dir, "data")];

  const usageErrors: [string, string[], RegExp][] = [
    ["an unknown option", ["keys", "list", "--bogus", ...store], /unknown option '--bogus'/],
    [
      "a missing required option",
      ["keys", "create", ...store],
      /required option '-n, --name <name>' not specified/,
    ],
    ["a missing argument", ["keys", "show", ...store], /missing required argument 'id'/],
    ["an unknown command", ["kyes", "list"], /unknown command 'kyes'[\s\S]*Did you mean keys\?/],
    ["an unknown subcommand", ["keys", "lst"], /unknown command 'lst'/],
    [
      "a value not among the choices",
      ["policy", "explain", "--tier", "bogus"],
      /Allowed choices are read, write, destructive/,
    ],
    ["no command at all", [], /Usage: portcullis \[options\] \[command\]/],
  ];
  for (const [what, args, message] of usageErrors) {
    it(`exits 2 with the usage for ${what}`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: portcullis/);
      assert.doesNotMatch(r.stderr, /unexpected error|at .*\.js:\d+/, "no stack trace");
    });
  }

  it("prints the usage error as one JSON value on stdout with --json", async () => {
    const r = await runCli(["keys", "list", "--json", "--bogus", ...store]);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { error: "usage", message: "error: unknown option '--bogus'" });
  });

  for (const args of [
    ["--help"],
    ["--version"],
    ["keys", "--help"],
    ["help", "keys"],
    ["policy", "--help"],
  ]) {
    it(`exits 0 for \`portcullis ${args.join(" ")}\``, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.length > 0);
    });
  }

  it("exits 1 when the command fails at run time (a store file that is not a database)", async () => {
    const notADatabase = join(dir, "not-a-database.db");
    writeFileSync(notADatabase, "this is not a SQLite database\n".repeat(10));
    const r = await runCli(["keys", "list", "--store", notADatabase]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /file is not a database/);
  });
});
