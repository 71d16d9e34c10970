/**
 * Regression: a key created with a misspelt server was accepted and could do nothing. The
 * console's key form runs the same check as `portcullis keys create` (src/admin/keys.ts): a
 * scope naming no configured server is refused on the page, naming the configured servers
 * and the closest spelling, and no key is created.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { signInToConsole } from "../helpers/consoleSession.js";
import { cleanup, DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";

describe("console key form: scopes are checked against the configured servers", () => {
  let gw: RunningGateway;
  let admin: { username: string; password: string };

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const out = await gw.cli(["users", "add", "key-admin", "--groups", "admins"]);
    admin = { username: "key-admin", password: String(out.password) };
  });
  after(async () => {
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  const names = async () =>
    ((await gw.cli(["keys", "list"])) as unknown as Record<string, unknown>[]).map((k) => k.name);

  it("refuses a misspelt server on the page and creates no key; the right spelling creates it", async () => {
    const console = await signInToConsole(gw, admin);
    const refused = await console.post("/console/keys", { name: "typo", servers: "dmeo", expires: "7d" });
    assert.equal(refused.status, 400, refused.html);
    assert.match(
      refused.html,
      /servers &#39;dmeo&#39;: no server named &#39;dmeo&#39; is configured \(did you mean &#39;demo&#39;\?\)|servers 'dmeo': no server named 'dmeo' is configured \(did you mean 'demo'\?\)/,
    );
    assert.ok(!(await names()).includes("typo"), "no key was created");
    const created = await console.post("/console/keys", { name: "typo", servers: "demo", expires: "7d" });
    assert.equal(created.status, 201, created.html);
    assert.ok((await names()).includes("typo"));
  });
});
