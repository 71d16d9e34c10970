/**
 * Issue 12 acceptance: every command copied from README.md and docs/ runs as written. The
 * fenced shell blocks (```sh, ```bash, ```shell) whose opening fence follows the line
 *
 *   <!-- runnable -->
 *
 * (an HTML comment: GitHub renders nothing) are run with `sh -e -c`, each in a fresh
 * directory holding a copy of the default policy pack and its decision table (`policies/`,
 * as in a clone or a project that copied the pack), against a real gateway started for this
 * test, and must exit 0. `portcullis` and `npx portcullis` are this checkout's built CLI
 * (shims on PATH); the environment has what the docs tell a user to set or copy from the
 * first run: `PORTCULLIS_CONFIG` (the gateway's config, so the CLI uses its store), `KEY`
 * (an API key the gateway accepts) and `KEY_ID` (its id), `GATEWAY` (the gateway's URL). The
 * docs' default address, http://127.0.0.1:8080, is replaced by the test gateway's (it listens
 * on a free port: the machine is shared).
 * Blocks that need what this machine lacks (an identity provider, Claude Desktop, the npm
 * registry) stay unmarked.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  cleanup,
  createKey,
  DEFAULT_POLICY_PACK,
  DEMO_SERVER,
  type RunningGateway,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { portcullisShims, runShell } from "../helpers/shell.js";

const RUNNABLE = "<!-- runnable -->";

interface Block {
  file: string;
  line: number;
  lang: string;
  runnable: boolean;
  script: string;
}

/** Every fenced shell block of a Markdown text, with whether the line before its fence marks it runnable. */
function shellBlocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(\S*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const fence = open[2] as string;
    let end = i + 1;
    while (end < lines.length && (lines[end] as string).trim() !== fence) end++;
    const lang = open[3] as string;
    if (["sh", "bash", "shell"].includes(lang)) {
      blocks.push({
        file,
        line: i + 1,
        lang,
        runnable: (lines[i - 1] ?? "").trim() === RUNNABLE,
        script: lines.slice(i + 1, end).join("\n"),
      });
    }
    i = end;
  }
  return blocks;
}

const DOCS = [
  "README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f)),
];
const blocks = DOCS.flatMap((f) => shellBlocks(f, readFileSync(f, "utf8")));
const runnable = blocks.filter((b) => b.runnable);

describe("the docs' commands run as written", () => {
  let gw: RunningGateway;
  let root: string;
  let bin: string;

  before(async () => {
    root = tempDir("portcullis-docs-run-");
    bin = portcullisShims(root);
    const demo = { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] };
    gw = await startGateway({
      config: {
        environment: "dev",
        // A fixed port, as in the docs: `tasks start` names the gateway's URL in the token.
        listen: { host: "127.0.0.1", port: await freePort() },
        policy: { paths: [DEFAULT_POLICY_PACK] },
        oauth: { mode: "builtin" },
        // The servers the docs' examples name, each the demo server.
        servers: { demo, github: demo, search: demo },
      },
    });
    console.log(
      `# ${runnable.length} of ${blocks.length} shell blocks in README.md and docs/ are marked runnable`,
    );
  });
  after(async () => {
    await gw?.stop();
    if (root) cleanup(root);
  });

  it("finds the shell blocks, and some are marked runnable", () => {
    assert.ok(runnable.length >= 5, `only ${runnable.length} blocks are marked ${RUNNABLE}`);
  });

  for (const block of runnable) {
    it(`${block.file}:${block.line}`, async () => {
      const cwd = mkdtempSync(join(root, "block-"));
      cpSync(resolve("policies"), join(cwd, "policies"), { recursive: true });
      // A key of its own: a block may rotate or revoke it.
      const key = await createKey(gw, `docs-${block.line}`);
      const env = { PORTCULLIS_CONFIG: gw.configFile, KEY: key.key, KEY_ID: key.id, GATEWAY: gw.url };
      const script = block.script.replaceAll("http://127.0.0.1:8080", gw.url);
      const r = await runShell(script, { cwd, bin, env });
      assert.equal(
        r.code,
        0,
        `${block.file}:${block.line} failed (exit ${r.code}):\n${block.script}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`,
      );
    });
  }
});
