/**
 * Issue 12: every command's `--help` ends with examples (src/cli/examples.ts), and they work
 * as written. The commands are found as a user finds them, by walking `--help` from the top,
 * so a command registered without examples fails here.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { cleanup, DEMO_SERVER, runCli, tempDir } from "../helpers/gateway.js";
import { portcullisShims, runShell } from "../helpers/shell.js";

/** Subcommand names listed under "Commands:" in a help text (wrapped descriptions are indented deeper). */
function subcommands(help: string): string[] {
  const at = help.indexOf("\nCommands:\n");
  if (at < 0) return [];
  const section = help.slice(at + "\nCommands:\n".length).split("\n\n")[0] as string;
  return section
    .split("\n")
    .map((l) => /^ {2}([a-z][a-z0-9-]*)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== "help");
}

function examplesOf(help: string): string[] {
  const at = help.indexOf("\nExamples:\n");
  if (at < 0) return [];
  return help
    .slice(at + "\nExamples:\n".length)
    .split("\n")
    .filter((l) => l.startsWith("  $ "))
    .map((l) => l.slice(4));
}

describe("--help examples", () => {
  const helps = new Map<string, string>();
  let dir: string;
  let bin: string;

  before(async () => {
    const walk = async (path: string[]) => {
      const r = await runCli([...path, "--help"]);
      assert.equal(r.code, 0, `portcullis ${path.join(" ")} --help: ${r.stderr}`);
      helps.set(path.join(" "), r.stdout);
      for (const sub of subcommands(r.stdout)) await walk([...path, sub]);
    };
    await walk([]);
    dir = tempDir("portcullis-examples-");
    bin = portcullisShims(dir);
    writeFileSync(
      join(dir, "portcullis.yaml"),
      stringify({
        dataDir: "./data",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      }),
    );
  });
  after(() => cleanup(dir));

  it("every registered command has examples that call it", () => {
    assert.ok(helps.size >= 30, `found only ${[...helps.keys()].join(", ")}`);
    const missing = [...helps].filter(([path, help]) => {
      const examples = examplesOf(help);
      return examples.length === 0 || !examples.some((e) => e.includes(`portcullis ${path}`.trim()));
    });
    assert.deepEqual(
      missing.map(([p]) => p || "(portcullis)"),
      [],
      "commands whose --help has no example of themselves",
    );
  });

  it("every example names a command that exists, down to a leaf (no misspelt subcommand)", () => {
    const wrong: string[] = [];
    for (const help of helps.values()) {
      for (const example of examplesOf(help)) {
        const words = (example.split("|").at(-1) as string).trim().split(/\s+/);
        if (words[0] !== "portcullis") continue;
        let path = "";
        for (const w of words.slice(1)) {
          const next = path ? `${path} ${w}` : w;
          if (!helps.has(next)) break;
          path = next;
        }
        if (subcommands(helps.get(path) ?? "").length > 0) wrong.push(example);
      }
    }
    assert.deepEqual(wrong, [], "examples that stop at a command group");
  });

  it("the examples run as written", async () => {
    const wanted = [
      "keys create",
      "keys list",
      "policy check",
      "policy explain",
      "tools list",
      "audit search",
      "audit tail",
      "audit public-key",
    ];
    let ran = 0;
    for (const path of wanted) {
      // Not here: a policies/ directory of one's own, and `tail -f`, which runs until stopped.
      const examples = examplesOf(helps.get(path) ?? "").filter(
        (e) => !e.includes("policies/") && !/ -f\b/.test(e),
      );
      assert.ok(examples.length > 0, path);
      for (const example of examples) {
        const r = await runShell(example, { cwd: dir, bin });
        assert.equal(r.code, 0, `$ ${example}\n${r.stdout}${r.stderr}`);
        ran++;
      }
    }
    assert.ok(ran >= 15, `ran ${ran}`);
  });
});
