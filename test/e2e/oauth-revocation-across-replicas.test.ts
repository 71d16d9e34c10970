/**
 * Revocation fan-out between gateway replicas (DESIGN: "Revocation must reach every replica
 * fast enough that a revoked credential is refused everywhere within 100 ms. The gateway
 * fails closed"). Two real `portcullis start` processes share one PostgreSQL store and
 * server secret; replica B has `publicUrl` set to replica A's URL, so both have the same
 * issuer and resource URLs, as replicas behind one load balancer do. Each credential is
 * first used on B (so B's verified-token cache holds it), then revoked through A (RFC 7009
 * revocation, refresh-token reuse) or the CLI, and B is polled until it refuses it.
 *
 * The delay is reported with t.diagnostic; the assertion is only that B refuses within 5 s,
 * so a slow CI machine does not make the suite flaky.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { after, before, describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import { signInAndConsent } from "../helpers/browserLogin.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";
import { pkce } from "../oauth/asHarness.js";

const REDIRECT = "http://127.0.0.1/callback";
const SECRET_VAR = "PORTCULLIS_REPLICA_TEST_SECRET";
/**
 * The design target for the fan-out, reported, not asserted: a test asserts order and outcome
 * (B accepted the credential, then refused it after the revocation), timing belongs in bench/.
 */
const DESIGN_TARGET_MS = 100;
/** Hang guard of each refusal test (the runner's timeout, not a claim about speed). */
const REFUSAL_TEST_TIMEOUT_MS = 60_000;

function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as Record<
    string,
    unknown
  >;
}

interface Probe {
  status: number;
  text: string;
  wwwAuthenticate: string | undefined;
}

interface Refusal {
  /** From the end of the revocation (HTTP response or CLI exit) to B's first 401. */
  delayMs: number;
  /** Requests B answered 200 after the revocation, before refusing. */
  acceptedAfter: number;
  last: Probe;
}

/** Polls until `probe` answers 401; fails on any other status than 200. */
async function untilRefused(probe: () => Promise<Probe>, revokedAt: number): Promise<Refusal> {
  let acceptedAfter = 0;
  for (;;) {
    const r = await probe();
    const elapsed = performance.now() - revokedAt;
    if (r.status === 401) return { delayMs: elapsed, acceptedAfter, last: r };
    assert.equal(r.status, 200, `unexpected answer from replica B: ${r.status} ${r.text.slice(0, 300)}`);
    acceptedAfter++;
    await sleep(2);
  }
}

function report(t: TestContext, what: string, r: Refusal, extra = ""): void {
  const ms = r.delayMs.toFixed(1);
  const verdict = r.delayMs <= DESIGN_TARGET_MS ? "within" : "OVER";
  t.diagnostic(
    `${what}: replica B refused after ${ms} ms (${verdict} the ${DESIGN_TARGET_MS} ms design target); ` +
      `${r.acceptedAfter} request(s) accepted after revocation${extra}`,
  );
}

describe("revocation across gateway replicas sharing a PostgreSQL store", {
  skip: await postgresSkip(),
}, () => {
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;
  let bOrigin: string;
  /** A's host:port: what a client behind the load balancer sends to every replica. */
  let publicHost: string;
  let resource: string;
  let audit: Store;
  let user: { username: string; password: string };
  let rpcId = 1;

  before(async () => {
    db = await createTestDatabase();
    const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };
    const config = {
      environment: "dev",
      store: db.url,
      serverSecret: { env: SECRET_VAR },
      oauth: { mode: "builtin" },
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
    };
    a = await startGateway({ config, env });
    publicHost = new URL(a.url).host;
    resource = a.endpoint("demo");
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        b = await startGateway({ config: { ...config, publicUrl: a.url, listen: { port } }, env });
        bOrigin = `http://127.0.0.1:${port}`;
        break;
      } catch (err) {
        if (attempt >= 3) throw err; // the port was taken in between: try another
      }
    }
    audit = await openStore(db.url);
    const added = await a.cli(["users", "add", "alice"]);
    user = { username: String(added.username), password: String(added.password) };
  });
  after(async () => {
    await audit?.close();
    await b?.stop();
    await a?.stop();
    await db?.drop();
  });

  /** A modern tools/list sent to replica B's own port, with the public Host. */
  const onB = async (token: string, path = "/mcp/demo"): Promise<Probe> => {
    const call = modern(rpcId++, "tools/list", {}, token);
    const res = await request(`${bOrigin}${path}`, {
      method: "POST",
      headers: {
        host: publicHost,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...call.headers,
      },
      body: JSON.stringify(call.body),
    });
    const text = await res.body.text();
    const www = res.headers["www-authenticate"];
    return { status: res.statusCode, text, wwwAuthenticate: Array.isArray(www) ? www[0] : www };
  };
  const onA = async (token: string) => {
    const call = modern(rpcId++, "tools/list", {}, token);
    return (await rpc(resource, call.body, call.headers)).status;
  };
  const form = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${a.url}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
        ...headers,
      },
      body: new URLSearchParams(params).toString(),
    });
    const text = await res.text();
    return { status: res.status, json: (text === "" ? {} : JSON.parse(text)) as Record<string, string> };
  };

  /** Registration (RFC 7591), sign-in and consent, and the code exchange with PKCE, all on A. */
  const userTokens = async () => {
    const reg = await fetch(`${a.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "replica test agent",
        application_type: "native",
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
      }),
    });
    const registered = (await reg.json()) as Record<string, string>;
    assert.equal(reg.status, 201, JSON.stringify(registered));
    const clientId = registered.client_id as string;
    const p = pkce();
    const auth = new URL(`${a.url}/auth`);
    for (const [k, v] of Object.entries({
      client_id: clientId,
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: "mcp",
      resource,
      state: randomBytes(8).toString("hex"),
      code_challenge: p.challenge,
      code_challenge_method: "S256",
    }))
      auth.searchParams.set(k, v);
    const back = await signInAndConsent(auth, { user });
    const code = back.searchParams.get("code");
    assert.ok(code, back.href);
    const t = await form("/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: clientId,
      code_verifier: p.verifier,
      resource,
    });
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.ok(t.json.access_token && t.json.refresh_token, JSON.stringify(Object.keys(t.json)));
    return { clientId, access: t.json.access_token, refresh: t.json.refresh_token };
  };

  /** The denial B wrote to the shared audit log, with the precise reason (fails if none appears). */
  const deniedWith = async (credentialId: string, reason: RegExp) => {
    const until = Date.now() + 3_000;
    let seen: string[] = [];
    while (Date.now() < until) {
      const records = await audit.listAudit({ credentialId, limit: 100 });
      const hit = records.find((r) => r.decision === "deny" && reason.test(r.reason));
      if (hit) return hit;
      seen = records.map((r) => `${r.decision}: ${r.reason}`);
      await sleep(50);
    }
    assert.fail(`no denial matching ${reason} for ${credentialId}; audit has ${JSON.stringify(seen)}`);
  };

  /** Uses the credential on B twice: the second answer comes from B's verified-credential cache. */
  const warmOnB = async (token: string) => {
    const first = await onB(token);
    assert.equal(first.status, 200, first.text);
    assert.match(first.text, /"tools"/);
    assert.equal((await onB(token)).status, 200, "second use on B, served from its cache");
  };

  it("runs two replicas with one issuer: B serves A's metadata and accepts A's Host", async () => {
    const res = await request(`${bOrigin}/.well-known/oauth-authorization-server`, {
      headers: { host: publicHost },
    });
    assert.equal(res.statusCode, 200);
    const meta = (await res.body.json()) as Record<string, unknown>;
    assert.equal(meta.issuer, a.url);
    const prm = await request(`${bOrigin}/.well-known/oauth-protected-resource/mcp/demo`, {
      headers: { host: publicHost },
    });
    assert.equal(((await prm.body.json()) as Record<string, unknown>).resource, resource);
    assert.notEqual(bOrigin, a.url, "B is a separate process on its own port");
  });

  it("refuses on replica B a user token whose grant was revoked on replica A (revocation fan-out)", {
    timeout: REFUSAL_TEST_TIMEOUT_MS,
  }, async (t) => {
    const { clientId, access, refresh } = await userTokens();
    await warmOnB(access);
    const revocation = await form("/token/revocation", {
      token: refresh,
      token_type_hint: "refresh_token",
      client_id: clientId,
    });
    const revokedAt = performance.now();
    assert.equal(revocation.status, 200, JSON.stringify(revocation.json));
    const refused = await untilRefused(() => onB(access), revokedAt);
    report(t, "RFC 7009 refresh-token revocation on A", refused);
    assert.match(refused.last.wwwAuthenticate ?? "", /^Bearer /);
    await deniedWith(String(jwtClaims(access).jti), /grant was revoked/);
    assert.equal(await onA(access), 401, "and A refuses it too");
    const refreshed = await form("/token", {
      grant_type: "refresh_token",
      refresh_token: refresh,
      client_id: clientId,
    });
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.json.error, "invalid_grant");
  });

  it("refuses on replica B a user token whose grant was revoked by refresh-token reuse on replica A", {
    timeout: REFUSAL_TEST_TIMEOUT_MS,
  }, async (t) => {
    const { clientId, access, refresh } = await userTokens();
    await warmOnB(access);
    const rotated = await form("/token", {
      grant_type: "refresh_token",
      refresh_token: refresh,
      client_id: clientId,
    });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.json));
    const second = rotated.json.access_token as string;
    assert.equal((await onB(access)).status, 200, "rotation alone leaves the grant live");
    await warmOnB(second);
    // The stolen, already-rotated refresh token is replayed: the whole grant is revoked (RFC 9700 §4.14.2).
    const replay = await form("/token", {
      grant_type: "refresh_token",
      refresh_token: refresh,
      client_id: clientId,
    });
    const revokedAt = performance.now();
    assert.equal(replay.status, 400, JSON.stringify(replay.json));
    assert.equal(replay.json.error, "invalid_grant");
    const refused = await untilRefused(() => onB(second), revokedAt);
    report(t, "refresh-token reuse on A", refused);
    assert.equal((await onB(access)).status, 401, "the first access token of the grant too");
    await deniedWith(String(jwtClaims(second).jti), /grant was revoked/);
  });

  it("refuses on replica B an API key revoked through the CLI", {
    timeout: REFUSAL_TEST_TIMEOUT_MS,
  }, async (t) => {
    const created = await a.cli(["keys", "create", "--name", "replica-key", "--servers", "demo"]);
    const key = created.key as string;
    const id = created.id as string;
    await warmOnB(key);
    const started = performance.now();
    const revoked = await a.cli(["keys", "revoke", id]);
    const revokedAt = performance.now();
    assert.equal(revoked.status, "revoked");
    const refused = await untilRefused(() => onB(key), revokedAt);
    report(
      t,
      "`portcullis keys revoke`",
      refused,
      `; the CLI itself took ${Math.round(revokedAt - started)} ms`,
    );
    await deniedWith(id, /key revoked at/);
  });

  it("refuses on replica B a machine client revoked through the CLI", {
    timeout: REFUSAL_TEST_TIMEOUT_MS,
  }, async (t) => {
    const created = await a.cli([
      "clients",
      "create",
      "--name",
      "replica-bot",
      "--auth",
      "client_secret_basic",
      "--servers",
      "demo",
    ]);
    const id = created.clientId as string;
    const secret = created.clientSecret as string;
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
    const issued = await form(
      "/token",
      { grant_type: "client_credentials", resource, scope: "mcp" },
      { authorization: basic },
    );
    assert.equal(issued.status, 200, JSON.stringify(issued.json));
    const token = issued.json.access_token as string;
    await warmOnB(token);
    const started = performance.now();
    const revoked = await a.cli(["clients", "revoke", id]);
    const revokedAt = performance.now();
    assert.equal(revoked.status, "revoked");
    const refused = await untilRefused(() => onB(token), revokedAt);
    report(
      t,
      "`portcullis clients revoke`",
      refused,
      `; the CLI itself took ${Math.round(revokedAt - started)} ms`,
    );
    await deniedWith(String(jwtClaims(token).jti), /revoked at/);
    const again = await form(
      "/token",
      { grant_type: "client_credentials", resource, scope: "mcp" },
      { authorization: basic },
    );
    assert.equal(again.status, 401);
    assert.equal(again.json.error, "invalid_client");
  });
});
