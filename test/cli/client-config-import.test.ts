/**
 * Reading the MCP servers of Claude Desktop, Cursor and VS Code configs (src/cli/clientConfigImport.ts):
 * which values count as secrets (never written in clear), JSONC, names valid in /mcp/<name>,
 * one variable per secret even when two servers use the same name.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ClientConfigImport, looksSecret, parseJsonc, serverName } from "../../src/cli/clientConfigImport.js";
import { cleanup, tempDir } from "../helpers/gateway.js";

describe("client config import", () => {
  const dir = tempDir("portcullis-import-");
  after(() => cleanup(dir));
  const write = (name: string, value: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
    return file;
  };

  it("treats credentials as secrets by name or by value, and ordinary settings as plain values", () => {
    for (const [name, value] of [
      ["GITHUB_PERSONAL_ACCESS_TOKEN", "x"],
      ["DB_PASSWORD", "hunter2"],
      ["OPENAI_API_KEY", "abc"],
      ["CLIENT_SECRET", "abc"],
      ["UPSTREAM", "ghp_0123456789abcdefghijABCDEFGHIJ012345"],
      ["DATABASE_URL", "postgres://app:s3cret@db.internal/app"],
      ["HEADER", "Bearer abcdefghijklmnop"],
      ["BLOB", "q9X2vL7pR4tY8wZ1mN6bC3kJ5hG0fD2s"],
    ])
      assert.equal(looksSecret(name as string, value as string), true, `${name}=${value}`);
    for (const [name, value] of [
      ["LOG_LEVEL", "debug"],
      ["ALLOWED_DIRS", "/home/me/projects"],
      ["REGION", "eu-west-1"],
      ["ENDPOINT", "https://api.example.com/v1"],
      ["GITHUB_TOKEN", ""],
    ])
      assert.equal(looksSecret(name as string, value as string), false, `${name}=${value}`);
  });

  it("reads JSON with comments and trailing commas, keeping // inside strings", () => {
    assert.deepEqual(parseJsonc('{ /* c */ "a": "http://x//y", // c\n "b": [1, 2,], }'), {
      a: "http://x//y",
      b: [1, 2],
    });
  });

  it("gives each server a name valid in /mcp/<name>, unique across files", () => {
    assert.equal(serverName("My GitHub (work)"), "my-github-work");
    const imp = new ClientConfigImport();
    imp.addFile(write("a.json", { mcpServers: { GitHub: { command: "gh-mcp" } } }));
    imp.addFile(write("b.json", { mcpServers: { github: { command: "gh-mcp2" } } }));
    const { servers, notes } = imp.result();
    assert.deepEqual(
      servers.map((s) => s.name),
      ["github", "github-2"],
    );
    assert.equal(notes.length, 2);
  });

  it("gives two servers' secrets of the same name two variables", () => {
    const imp = new ClientConfigImport();
    imp.addFile(
      write("c.json", {
        mcpServers: {
          one: { command: "a", env: { API_KEY: "k1" } },
          two: { command: "b", env: { API_KEY: "k2" } },
        },
      }),
    );
    const { servers, variables } = imp.result();
    assert.deepEqual(
      variables.map((v) => [v.variable, v.field]),
      [
        ["API_KEY", "servers.one.env.API_KEY"],
        ["TWO_API_KEY", "servers.two.env.API_KEY"],
      ],
    );
    const two = servers[1];
    assert.ok(two?.transport === "stdio");
    assert.deepEqual(two.env, { API_KEY: { env: "TWO_API_KEY" } });
  });

  it("skips disabled, SSE and unusable entries with a note, and reads VS Code settings' mcp.servers", () => {
    const imp = new ClientConfigImport();
    imp.addFile(
      write("settings.json", {
        mcp: {
          servers: {
            off: { command: "x", disabled: true },
            old: { type: "sse", url: "http://h/sse" },
            odd: { foo: 1 },
            ftp: { url: "ftp://h/mcp" },
            web: { type: "http", url: "http://127.0.0.1:3000/mcp" },
          },
        },
      }),
    );
    const { servers, notes } = imp.result();
    assert.deepEqual(
      servers.map((s) => [s.name, s.transport]),
      [["web", "http"]],
    );
    assert.equal(notes.length, 4, notes.join("\n"));
  });
});
