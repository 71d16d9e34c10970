/**
 * Two gateway replicas on one PostgreSQL store (and one server secret), as behind a load
 * balancer: a guesser or a registration flood spread over both gets what one replica allows,
 * not twice as much, and a console session signed out on one is refused by the other. The
 * counters live in the store's `portcullis_rate_limits` table, where typed usernames appear
 * only as keyed hashes.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { DEFAULT_ABUSE_LIMITS } from "../../src/oauth/abuseLimits.js";
import { signInToConsole } from "../helpers/consoleSession.js";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { openSignInForm, type SignInForm } from "../helpers/signInForm.js";

const SECRET_VAR = "PORTCULLIS_SHARED_LIMITS_TEST_SECRET";
const LIMITS = {
  ...DEFAULT_ABUSE_LIMITS,
  signInFailuresPerUser: 3,
  signInFailuresPerAccount: 4,
  accountBackoffSeconds: 600,
  accountBackoffMaxSeconds: 600,
  registrationsPerMinute: 2,
};

describe("replicas on one PostgreSQL share sign-in limits and sign-out", {
  skip: await postgresSkip(),
}, () => {
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;
  let admin: { username: string; password: string };
  const forms: SignInForm[] = [];

  before(async () => {
    db = await createTestDatabase();
    const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };
    const config = {
      environment: "dev",
      store: db.url,
      serverSecret: { env: SECRET_VAR },
      oauth: { mode: "builtin", limits: LIMITS },
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
    };
    a = await startGateway({ config, env });
    b = await startGateway({ config, env });
    const out = await a.cli(["users", "add", "ops-admin", "--groups", "admins"]);
    admin = { username: "ops-admin", password: String(out.password) };
  });
  after(async () => {
    await Promise.all(forms.map((f) => f.close()));
    await b?.stop();
    await a?.stop();
    await db?.drop();
  });

  const formOn = async (gw: RunningGateway) => {
    const form = await openSignInForm(new URL("/console/login", gw.url));
    forms.push(form);
    return form;
  };

  it("counts guesses on one account from one address across both replicas", async () => {
    const [onA, onB] = [await formOn(a), await formOn(b)];
    assert.equal((await onA.post("carol", "guess-1", "127.0.0.21")).status, 401);
    assert.equal((await onA.post("carol", "guess-2", "127.0.0.21")).status, 401);
    assert.equal((await onB.post("carol", "guess-3", "127.0.0.21")).status, 401);
    // Each replica alone has seen fewer than three: only a shared count refuses here.
    const fourth = await onB.post("carol", "guess-4", "127.0.0.21");
    assert.equal(fourth.status, 429);
    assert.equal((await onA.post("carol", "guess-5", "127.0.0.21")).status, 429);
    // Positive control: another address still gets its guesses checked.
    assert.equal((await onA.post("carol", "guess-6", "127.0.0.22")).status, 401);
  });

  it("backs off one account guessed from many addresses across both replicas", async () => {
    const [onA, onB] = [await formOn(a), await formOn(b)];
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const form = i % 2 === 0 ? onA : onB;
      statuses.push((await form.post("dave", `guess-${i}`, `127.0.1.${i}`)).status);
    }
    // Four free failures and one more that starts the backoff, whichever replica answered.
    assert.equal(
      statuses.filter((s) => s === 401).length,
      LIMITS.signInFailuresPerAccount + 1,
      statuses.join(),
    );
    assert.equal(statuses.filter((s) => s === 429).length, 12 - LIMITS.signInFailuresPerAccount - 1);
  });

  it("stores no typed username in the shared counters", async () => {
    const pasted = "Correct-Horse-Battery-Staple-9";
    assert.equal((await (await formOn(a)).post(pasted, "x", "127.0.2.1")).status, 401);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ key: string }>("SELECT key FROM portcullis_rate_limits");
      assert.ok(
        rows.some((r) => r.key.startsWith("signin-account:")),
        "the counters are in PostgreSQL",
      );
      for (const { key } of rows) {
        assert.ok(!key.toLowerCase().includes("horse"), key);
        assert.ok(!key.includes("carol") && !key.includes("dave"), key);
      }
    } finally {
      await client.end();
    }
  });

  it("counts client registrations across both replicas (registration flood)", async () => {
    const register = (gw: RunningGateway) =>
      fetch(`${gw.url}/reg`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          client_name: "Flood",
          application_type: "native",
          redirect_uris: ["http://127.0.0.1/callback"],
          token_endpoint_auth_method: "none",
        }),
      });
    assert.equal((await register(a)).status, 201);
    assert.equal((await register(b)).status, 201);
    const third = await register(a);
    assert.equal(third.status, 429, "two replicas allow what one allows");
    assert.equal((await register(b)).status, 429);
  });

  it("refuses on one replica a console cookie signed out on the other", async () => {
    const browser = await signInToConsole(a, admin);
    const copied = browser.cookie();
    const onB = () =>
      fetch(`${b.url}/console/api/approvals`, { headers: { cookie: copied }, redirect: "manual" });
    assert.equal((await onB()).status, 200, "positive control: B accepts A's session");
    assert.equal((await browser.post("/console/logout", {}, "/console")).status, 200);
    assert.equal((await onB()).status, 401);
  });
});
