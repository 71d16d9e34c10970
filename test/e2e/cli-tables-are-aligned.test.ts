/**
 * Regression (issue 12): some commands printed aligned tables and others tab-separated lines.
 * Every listing is now one aligned table from src/cli/table.ts (a header, then rows whose
 * cells start under their header), and nothing is coloured: the CLI writes no ANSI escape.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stringify } from "yaml";
import { cleanup, DEMO_SERVER, runCli, tempDir } from "../helpers/gateway.js";

/**
 * The output as a user sees it is a table with these headers: every row's cell starts at its
 * header's column, after a blank, and no tab is used to fake the alignment.
 */
function assertAlignedTable(output: string, headers: string[], rows: number): string[][] {
  assert.doesNotMatch(output, /\t/, "no tab-separated columns");
  assert.ok(!output.includes("\u001b["), "no colour escapes");
  const lines = output.trimEnd().split("\n");
  const head = lines[0] as string;
  const starts = headers.map((h) => head.indexOf(h));
  assert.deepEqual(head.split(/ {2,}/), headers, `the first line is the header row:\n${output}`);
  assert.equal(lines.length, rows + 1, output);
  return lines.slice(1).map((line) => {
    starts.forEach((start, i) => {
      if (i === 0) return;
      assert.equal(line[start - 1], " ", `column ${headers[i]} starts after a blank:\n${output}`);
      assert.notEqual(line[start], " ", `column ${headers[i]} starts under its header:\n${output}`);
    });
    return starts.map((start, i) => line.slice(start, starts[i + 1] ?? line.length).trim());
  });
}

describe("CLI listings are aligned tables", () => {
  let dir: string;
  let config: string;
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, "--config", config]);
    assert.equal(r.code, 0, `portcullis ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = tempDir("portcullis-tables-");
    config = join(dir, "portcullis.yaml");
    writeFileSync(
      config,
      stringify({
        dataDir: join(dir, "data"),
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      }),
    );
    await cli("clients", "create", "--name", "nightly-report", "--auth", "client_secret_basic");
    await cli("clients", "create", "--name", "ci", "--auth", "client_secret_basic");
    await cli("oauth", "signing-keys", "rotate");
    await cli("oauth", "signing-keys", "rotate");
  });
  after(() => cleanup(dir));

  it("clients list (was tab-separated)", async () => {
    const rows = assertAlignedTable(
      await cli("clients", "list"),
      ["clientId", "name", "authMethod", "status", "servers", "expiresAt"],
      2,
    );
    assert.deepEqual(rows.map((r) => [r[1], r[2], r[3], r[4]]).sort(), [
      ["ci", "client_secret_basic", "active", "demo"],
      ["nightly-report", "client_secret_basic", "active", "demo"],
    ]);
  });

  it("oauth signing-keys list (was tab-separated)", async () => {
    const rows = assertAlignedTable(
      await cli("oauth", "signing-keys", "list"),
      ["kid", "alg", "state", "createdAt", "publishedUntil"],
      4,
    );
    assert.deepEqual(rows.map((r) => [r[1], r[2]]).sort(), [
      ["ES256", "retired"],
      ["ES256", "signing"],
      ["RS256", "retired"],
      ["RS256", "signing"],
    ]);
    for (const r of rows)
      assert.equal(r[4] === "-", r[2] === "signing", "only retired keys have publishedUntil");
  });

  it("audit search (was unaligned lines)", async () => {
    const rows = assertAlignedTable(
      await cli("audit", "search"),
      ["at", "decision", "principal", "target", "reason"],
      4,
    );
    assert.deepEqual(
      rows.map((r) => r[4]),
      [
        "signing keys rotated",
        "signing keys rotated",
        "machine client created (client_secret_basic)",
        "machine client created (client_secret_basic)",
      ],
    );
  });

  it("policy explain's rules", async () => {
    const out = await cli(
      "policy",
      "explain",
      "--principal",
      "method=api_key",
      "--server",
      "demo",
      "--tool",
      "add_note",
      "--tier",
      "write",
    );
    const rules = out
      .slice(out.indexOf("\n  match"))
      .split("\n")
      .slice(1)
      .map((l) => l.slice(2))
      .join("\n");
    const rows = assertAlignedTable(rules, ["match", "effect", "rule", "where", "why"], 14);
    assert.deepEqual(
      rows.find((r) => r[2] === "write-tier-needs-user-oauth"),
      [
        "no",
        "allow",
        "write-tier-needs-user-oauth",
        "policies/default/20-write.yaml:3",
        'authMethods: "api_key" matches none of ["oauth"]',
      ],
    );
  });
});
