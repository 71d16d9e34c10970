/**
 * Every sign-in decision is in the hash-chained audit trail (DESIGN rule 5), against a real
 * gateway with the built-in authorization server and the console, driven as a browser drives
 * them (HTTP form posts with a cookie jar): an OAuth sign-in and consent, a wrong password, a
 * password guesser past the throttle, a console sign-in, a refused console sign-in and a
 * console sign-out each leave exactly their record (`method: "sign_in"`), the trail still
 * verifies, `portcullis audit search --method sign_in` finds them, and neither a password nor
 * a password typed into the username field is ever stored or logged in clear.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StoredAuditRecord } from "../../src/store/types.js";
import { CookieJar } from "../fixtures/oidc-idp.js";
import { auditRecords } from "../helpers/audit.js";
import { browse, type Credentials, signInAndConsent } from "../helpers/browserLogin.js";
import { signInToConsole } from "../helpers/consoleSession.js";
import { cleanup, DEMO_SERVER, type RunningGateway, runCli, startGateway } from "../helpers/gateway.js";
import { openSignInForm } from "../helpers/signInForm.js";
import { waitFor } from "../helpers/wait.js";

const REDIRECT = "http://127.0.0.1/callback";

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe("sign-ins in the audit trail", () => {
  let gw: RunningGateway;
  let admin: Credentials;
  let alice: Credentials;

  const signIns = () => auditRecords(gw, { method: "sign_in" });
  const detail = (r: StoredAuditRecord) => (r.detail ?? {}) as Record<string, unknown>;
  /** Waits until `count` records match, then returns them (more would fail the caller's check). */
  const recordsOf = (what: string, match: (r: StoredAuditRecord) => boolean, count = 1) =>
    waitFor(what, async () => {
      const found = (await signIns()).filter(match);
      return found.length >= count ? found : undefined;
    });

  /** A client registered as an MCP client registers itself (RFC 7591), with a display name. */
  async function registerClient(name: string): Promise<string> {
    const res = await fetch(`${gw.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: name,
        application_type: "native",
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      }),
    });
    const body = (await res.json()) as { client_id: string };
    assert.equal(res.status, 201);
    return body.client_id;
  }

  function authorizationUrl(clientId: string): URL {
    const url = new URL(`${gw.url}/auth`);
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: "mcp",
      resource: gw.endpoint("demo"),
      state: randomBytes(8).toString("hex"),
      code_challenge: createHash("sha256").update(randomBytes(32)).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();
    return url;
  }

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: {
          mode: "builtin",
          // A guesser is throttled after two failures for one account from one address.
          limits: { signInFailuresPerUser: 2 },
        },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const a = await gw.cli(["users", "add", "root-admin", "--groups", "admins"]);
    admin = { username: "root-admin", password: String(a.password) };
    const b = await gw.cli(["users", "add", "alice", "--groups", "staff"]);
    alice = { username: "alice", password: String(b.password) };
    await gw.cli(["users", "add", "bob"]);
  });
  after(async () => {
    await gw?.stop();
    if (gw) cleanup(gw.dir);
  });

  it("records an OAuth sign-in and the consent, naming the user, the client by its name, the address and a decision id", async () => {
    const clientId = await registerClient("Audit Trail Agent");
    const back = await signInAndConsent(authorizationUrl(clientId), { user: alice });
    assert.ok(back.searchParams.get("code"), "the client got its code");

    const ofClient = (r: StoredAuditRecord) => detail(r).clientId === clientId;
    const [signedIn] = await recordsOf(
      "the sign-in record",
      (r) => ofClient(r) && detail(r).event === "sign_in.succeeded",
    );
    const [consent] = await recordsOf(
      "the consent record",
      (r) => ofClient(r) && detail(r).event === "consent.granted",
    );
    const all = (await signIns()).filter(ofClient);
    assert.deepEqual(
      all.map((r) => detail(r).event),
      ["sign_in.succeeded", "consent.granted"],
      "exactly one sign-in and one consent",
    );
    for (const r of [signedIn, consent]) {
      assert.ok(r);
      assert.equal(r.decision, "allow");
      assert.equal(r.method, "sign_in");
      assert.match(String(r.principal), new RegExp(`^oauth:${gw.url}#u_`));
      assert.equal(detail(r).username, "alice");
      assert.equal(detail(r).clientName, "Audit Trail Agent");
      assert.match(String(detail(r).address), /127\.0\.0\.1/);
      assert.match(String(r.decisionId), /^[A-Za-z0-9_-]{16}$/);
      assert.ok(r.chain && r.hash, "hash-chained");
    }
    assert.equal(signedIn?.principal, consent?.principal);
    assert.equal(detail(signedIn as StoredAuditRecord).amr, "pwd");
    assert.deepEqual(detail(consent as StoredAuditRecord).resources, [gw.endpoint("demo")]);
  });

  it("records a denied consent", async () => {
    const clientId = await registerClient("Denied Agent");
    const back = await signInAndConsent(authorizationUrl(clientId), { user: alice, decision: "deny" });
    assert.equal(back.searchParams.get("error"), "access_denied");
    const [denied] = await recordsOf(
      "the denied consent",
      (r) => detail(r).clientId === clientId && detail(r).event === "consent.denied",
    );
    assert.equal(denied?.decision, "deny");
    assert.equal(detail(denied as StoredAuditRecord).username, "alice");
  });

  it("records a wrong password as a refused sign-in of that account, the password nowhere", async () => {
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    const clientId = await registerClient("Wrong Password Agent");
    const form = await openSignInForm(authorizationUrl(clientId));
    try {
      const answer = await form.post("alice", wrong);
      assert.equal(answer.status, 401);
      assert.match(answer.html, /class="error" role="alert">Invalid username or password/);
    } finally {
      await form.close();
    }
    const [failed] = await recordsOf(
      "the failed sign-in",
      (r) => detail(r).clientId === clientId && detail(r).event === "sign_in.failed",
    );
    assert.equal((await signIns()).filter((r) => detail(r).clientId === clientId).length, 1, "exactly one");
    assert.equal(failed?.decision, "deny");
    assert.match(String(failed?.reason), /wrong password/);
    assert.equal(detail(failed as StoredAuditRecord).outcome, "wrong_password");
    assert.equal(detail(failed as StoredAuditRecord).username, "alice");
    assert.match(String(failed?.principal), /^oauth:.*#u_/);
    assert.match(String(detail(failed as StoredAuditRecord).account), /^[A-Za-z0-9_-]{22}$/);
    const logged = [JSON.stringify(gw.logs), ...gw.stderr].join("\n");
    assert.ok(!logged.includes(wrong), "the password is not in the logs");
    for (const file of filesUnder(join(gw.dir, "data")))
      assert.ok(!readFileSync(file).includes(wrong), `the password is not in ${file}`);
  });

  it("a password typed into the username field is never stored in clear: the record keeps a keyed hash", async () => {
    const pasted = `Tr0ub4dor&3-${randomBytes(6).toString("hex")}`;
    const clientId = await registerClient("Pasted Password Agent");
    const form = await openSignInForm(authorizationUrl(clientId));
    try {
      assert.equal((await form.post(pasted, "anything at all")).status, 401);
    } finally {
      await form.close();
    }
    // Positive control: the attempt is recorded, naming no account and only a keyed hash.
    const [failed] = await recordsOf(
      "the failed sign-in",
      (r) => detail(r).clientId === clientId && detail(r).event === "sign_in.failed",
    );
    assert.equal(detail(failed as StoredAuditRecord).outcome, "unknown_user");
    assert.equal(detail(failed as StoredAuditRecord).username, null);
    assert.equal(failed?.principal, null);
    assert.match(String(detail(failed as StoredAuditRecord).account), /^[A-Za-z0-9_-]{22}$/);
    const secretPart = pasted.slice(12);
    assert.ok(!JSON.stringify(await signIns()).includes(secretPart), "not in any audit record");
    const logged = [JSON.stringify(gw.logs), ...gw.stderr].join("\n");
    assert.ok(!logged.includes(secretPart), "not in the logs");
    for (const file of filesUnder(join(gw.dir, "data")))
      assert.ok(!readFileSync(file).includes(secretPart), `not in ${file}`);
  });

  it("records every attempt of a throttled password guesser, the password unchecked", async () => {
    const clientId = await registerClient("Guesser");
    const form = await openSignInForm(authorizationUrl(clientId));
    const statuses: number[] = [];
    try {
      for (let i = 0; i < 4; i++) statuses.push((await form.post("bob", `guess-${i}`)).status);
    } finally {
      await form.close();
    }
    assert.deepEqual(statuses, [401, 401, 429, 429]);
    const records = await recordsOf("four refused attempts", (r) => detail(r).clientId === clientId, 4);
    assert.deepEqual(
      records.map((r) => detail(r).outcome),
      ["wrong_password", "wrong_password", "throttled", "throttled"],
    );
    for (const r of records.slice(2)) {
      assert.equal(r.decision, "deny");
      assert.equal(detail(r).username, null, "throttled: the account is not even looked up");
      assert.equal(
        detail(r).account,
        detail(records[0] as StoredAuditRecord).account,
        "the same account, by hash",
      );
      assert.match(r.reason, /throttled/);
    }
  });

  it("records a console sign-in: the authorization server's sign-in to the Portcullis console, then the session", async () => {
    await signInToConsole(gw, admin);
    const [signedIn] = await recordsOf(
      "console.signed_in",
      (r) => detail(r).event === "console.signed_in" && detail(r).username === "root-admin",
    );
    const atServer = (await signIns()).filter(
      (r) =>
        detail(r).event === "sign_in.succeeded" &&
        detail(r).username === "root-admin" &&
        detail(r).clientId === "portcullis-console",
    );
    assert.equal(atServer.length, 1, "one password sign-in, to the console client");
    assert.equal(detail(atServer[0] as StoredAuditRecord).clientName, "Portcullis console");
    assert.equal(
      (await signIns()).filter((r) => detail(r).event === "console.signed_in").length,
      1,
      "exactly one console sign-in",
    );
    assert.equal(signedIn?.decision, "allow");
    assert.equal(signedIn?.principal, atServer[0]?.principal);
    assert.equal(detail(signedIn as StoredAuditRecord).clientName, "Portcullis console");
  });

  it("records a refused console sign-in (wrong password, then not an administrator)", async () => {
    const form = await openSignInForm(new URL("/console/login", gw.url));
    try {
      assert.equal((await form.post("root-admin", "not the password")).status, 401);
    } finally {
      await form.close();
    }
    await recordsOf(
      "the console's refused password",
      (r) =>
        detail(r).event === "sign_in.failed" &&
        detail(r).clientId === "portcullis-console" &&
        detail(r).username === "root-admin",
    );

    // alice's password is right, but she is no administrator.
    const jar = new CookieJar();
    const back = await signInAndConsent(new URL("/console/login", gw.url), {
      user: { username: "alice", password: alice.password },
      jar,
      stopAt: (url) => url.pathname === "/console/callback",
    });
    const refused = await browse(jar, back);
    assert.equal(refused.status, 403);
    const [record] = await recordsOf(
      "console.sign_in_failed",
      (r) => detail(r).event === "console.sign_in_failed" && detail(r).username === "alice",
    );
    assert.equal(record?.decision, "deny");
    assert.equal(detail(record as StoredAuditRecord).outcome, "not_admin");
    assert.match(String(record?.reason), /not in an admin group/);
  });

  it("records a console sign-out", async () => {
    const browser = await signInToConsole(gw, admin);
    const out = await browser.post("/console/logout", {}, "/console");
    assert.equal(out.status, 200);
    const [signedOut] = await recordsOf(
      "console.signed_out",
      (r) => detail(r).event === "console.signed_out",
    );
    assert.equal(
      (await signIns()).filter((r) => detail(r).event === "console.signed_out").length,
      1,
      "exactly one sign-out",
    );
    assert.equal(signedOut?.decision, "allow");
    assert.equal(detail(signedOut as StoredAuditRecord).username, "root-admin");
    assert.match(String(signedOut?.principal), /^oauth:.*#u_/);
  });

  it("keeps the chain verifiable and the records searchable by method", async () => {
    const verify = await runCli(["audit", "verify", "--config", gw.configFile, "--json"]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const search = await runCli([
      "audit",
      "search",
      "--method",
      "sign_in",
      "--decision",
      "deny",
      "--config",
      gw.configFile,
      "--json",
    ]);
    assert.equal(search.code, 0, search.stderr);
    const found = search.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { method: string; decision: string; detail: { event: string } });
    assert.ok(found.length >= 6, `${found.length} refused sign-ins found`);
    for (const r of found) {
      assert.equal(r.method, "sign_in");
      assert.equal(r.decision, "deny");
    }
  });
});
