/**
 * A config file with `oauth: {mode: builtin}` and no user: `start` creates the first admin
 * (group `admins`), prints its generated password once, and audits it; the console accepts
 * it. Before, such a start created nobody and said nothing, and the console was unusable.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { auditRecords } from "../helpers/audit.js";
import { signInToConsole } from "../helpers/consoleSession.js";
import { cleanup, DEMO_SERVER, type RunningGateway, startGateway, tempDir } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait.js";

const config = {
  oauth: { mode: "builtin" },
  servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
};

/** The admin password the banner printed, once the banner is out. */
async function printedAdmin(gw: RunningGateway): Promise<string | null> {
  await waitFor("the banner", () => gw.stderr.some((l) => l.startsWith("Claude Desktop")), {
    timeoutMs: 20_000,
  });
  const line = gw.stderr.find((l) => /username: admin {3}password: /.test(l));
  return line === undefined ? null : (/password: (\S+)/.exec(line)?.[1] ?? null);
}

describe("builtin OAuth from a config file: the first admin", () => {
  const dir = tempDir("portcullis-first-admin-");
  after(() => cleanup(dir));

  it("is created on the first start, printed once, audited, and signs in to the console", async () => {
    let password: string | null;
    const first = await startGateway({ config, dir });
    try {
      password = await printedAdmin(first);
      assert.ok(password, first.stderr.join("\n"));
      const users = (await first.cli(["users", "list"])) as unknown as {
        username: string;
        groups: string[];
      }[];
      assert.deepEqual(
        users.map((u) => [u.username, u.groups]),
        [["admin", ["admins"]]],
      );
      const console = await signInToConsole(first, { username: "admin", password });
      assert.equal((await console.get("/console")).status, 200);
    } finally {
      await first.stop();
    }
    const added = (await auditRecords({ dir })).filter((r) => JSON.stringify(r).includes("user.added"));
    assert.equal(added.length, 1, "the creation is in the audit trail");
    assert.match(JSON.stringify(added[0]), /user admin added/);

    const second = await startGateway({ config, dir });
    try {
      assert.equal(await printedAdmin(second), null, "shown once: a store with a user gets no new admin");
    } finally {
      await second.stop();
    }
  });
});
