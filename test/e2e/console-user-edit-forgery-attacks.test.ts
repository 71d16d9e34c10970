/**
 * Forged requests against the console's user editing (/console/users/:id/:action), which can
 * lock people out or take over an account: a cross-site form post riding the administrator's
 * cookie (no CSRF token, or a valid token from another origin), an administrator demoted to
 * staff whose console session is still open, and an administrator trying to disable themselves. Each is
 * refused and leaves the account as it was; the legitimate post (the positive control) works.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ConsoleBrowser, signInToConsole } from "../helpers/consoleSession.js";
import { cleanup, DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";

interface Listed {
  id: string;
  username: string;
  groups: string[];
  disabledAt: string | null;
}

describe("console user editing: forged requests", () => {
  let gw: RunningGateway;
  let admin: ConsoleBrowser;
  let staff: ConsoleBrowser;
  /** The CSRF token stan's page carried while he was an administrator. */
  let staffCsrf: string;
  const users = async () => (await gw.cli(["users", "list"])) as unknown as Listed[];
  const user = async (name: string) => (await users()).find((u) => u.username === name) as Listed;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const a = await gw.cli(["users", "add", "root-admin", "--groups", "admins"]);
    const s = await gw.cli(["users", "add", "stan", "--groups", "admins"]);
    await gw.cli(["users", "add", "victim", "--groups", "staff"]);
    admin = await signInToConsole(gw, { username: "root-admin", password: String(a.password) });
    staff = await signInToConsole(gw, { username: "stan", password: String(s.password) });
    staffCsrf = /name="csrf" value="([^"]+)"/.exec((await staff.get("/console/users")).html)?.[1] as string;
    assert.ok(staffCsrf);
    // Demoted while signed in: the open session must not keep administrator rights.
    await gw.cli(["users", "set-groups", "stan", "staff"]);
  });
  after(async () => {
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  const post = (
    who: ConsoleBrowser,
    path: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ) =>
    fetch(new URL(path, gw.url), {
      method: "POST",
      headers: { cookie: who.cookie(), "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form).toString(),
      redirect: "manual",
    });
  const csrfOf = async (who: ConsoleBrowser, path: string) =>
    /name="csrf" value="([^"]+)"/.exec((await who.get(path)).html)?.[1] as string;

  it("refuses a cross-site post without the CSRF token (disable, groups, password reset)", async () => {
    const victim = await user("victim");
    for (const [action, form] of [
      ["disable", {}],
      ["groups", { groups: "admins" }],
      ["password", {}],
    ] as const) {
      const res = await post(admin, `/console/users/${victim.id}/${action}`, form);
      assert.equal(res.status, 403, action);
      assert.doesNotMatch(await res.text(), /id="secret"/, "no password shown");
    }
    const after = await user("victim");
    assert.equal(after.disabledAt, null);
    assert.deepEqual(after.groups, ["staff"]);
  });

  it("refuses a valid CSRF token posted from another origin", async () => {
    const victim = await user("victim");
    const csrf = await csrfOf(admin, `/console/users/${victim.id}`);
    const res = await post(
      admin,
      `/console/users/${victim.id}/disable`,
      { csrf },
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    );
    assert.equal(res.status, 403);
    assert.equal((await user("victim")).disabledAt, null);
  });

  it("refuses an administrator demoted to staff while signed in", async () => {
    const victim = await user("victim");
    assert.equal((await staff.get(`/console/users/${victim.id}`)).status, 403);
    const csrf = await csrfOf(staff, "/console/users");
    const res = await post(staff, `/console/users/${victim.id}/groups`, {
      csrf: csrf ?? "",
      groups: "admins",
    });
    assert.equal(res.status, 403);
    assert.deepEqual((await user("victim")).groups, ["staff"]);
    assert.deepEqual((await user("stan")).groups, ["staff"]);
  });

  it("refuses an administrator disabling themselves; the same post disables another user", async () => {
    const self = await user("root-admin");
    const refused = await admin.post(`/console/users/${self.id}/disable`, {}, `/console/users/${self.id}`);
    assert.equal(refused.status, 409);
    assert.equal((await user("root-admin")).disabledAt, null);
    const victim = await user("victim");
    const done = await admin.post(`/console/users/${victim.id}/disable`, {}, `/console/users/${victim.id}`);
    assert.equal(done.status, 200, done.html);
    assert.notEqual((await user("victim")).disabledAt, null, "positive control");
  });

  it("answers an unknown user id with 404, not an error page", async () => {
    const res = await admin.post("/console/users/u_nobody/disable", {}, "/console/users");
    assert.equal(res.status, 404);
    assert.match(res.html, /No user u_nobody/);
  });
});
