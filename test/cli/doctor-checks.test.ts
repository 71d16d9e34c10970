/**
 * The pure parts of `portcullis doctor` (src/cli/doctorChecks.ts): the Node version rule,
 * finding a stdio command as spawn() would, and finding every secret reference in a config.
 */
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { checkNode, secretReferences } from "../../src/cli/doctorChecks.js";
import { parseConfig } from "../../src/config/load.js";
import { findCommand } from "../../src/forward/upstreamChecks.js";
import { cleanup, tempDir } from "../helpers/gateway.js";

describe("doctor checks", () => {
  const dir = tempDir("portcullis-doctor-unit-");
  after(() => cleanup(dir));

  it("Node: below 20 fails, 20 warns (end of life April 2026), 22 and later are ok", () => {
    assert.equal(checkNode("18.19.0").status, "fail");
    const twenty = checkNode("20.11.1");
    assert.equal(twenty.status, "warn");
    assert.match(twenty.fix ?? "", /Node 22 or 24/);
    assert.equal(checkNode("22.3.0").status, "ok");
    assert.equal(checkNode("24.0.0").status, "ok");
  });

  it("finds a command on PATH or by path only when it is an executable file", () => {
    const tool = join(dir, "my-mcp");
    writeFileSync(tool, "#!/bin/sh\n");
    chmodSync(tool, 0o755);
    const plain = join(dir, "not-executable");
    writeFileSync(plain, "");
    chmodSync(plain, 0o644);
    assert.equal(findCommand("my-mcp", `/nonexistent:${dir}`, "/"), tool);
    assert.equal(findCommand("not-executable", dir, "/"), null);
    assert.equal(findCommand("./my-mcp", undefined, dir), tool);
    assert.equal(findCommand(plain, undefined, "/"), null);
    assert.equal(findCommand("my-mcp", "/nonexistent", "/"), null);
  });

  it("lists every secret reference with its field, and never mistakes a variable named 'file' for one", () => {
    const config = parseConfig(
      {
        serverSecret: { file: "/etc/portcullis/secret" },
        review: { webhook: { url: "https://hooks.example.com/x", secret: { env: "WEBHOOK_SECRET" } } },
        servers: {
          a: { transport: "stdio", command: "x", env: { file: "/data/in.csv" } },
          c: { transport: "stdio", command: "y", env: { TOKEN: { env: "C_TOKEN" } } },
          b: {
            transport: "http",
            url: "https://b.example.com/mcp",
            headers: { Authorization: { file: "/run/b" } },
          },
        },
      },
      "test",
    );
    assert.deepEqual(
      secretReferences(config).sort((x, y) => x.field.localeCompare(y.field)),
      [
        { field: "review.webhook.secret", env: "WEBHOOK_SECRET" },
        { field: "servers.b.headers.Authorization", file: "/run/b" },
        { field: "servers.c.env.TOKEN", env: "C_TOKEN" },
        { field: "serverSecret", file: "/etc/portcullis/secret" },
      ],
    );
  });
});
