/**
 * RFC 8693 token exchange at the built-in authorization server (docs/token-exchange.md): a
 * standing credential (an API key, a person's OAuth token from the SDK's own flow, a task
 * token) is traded for a task token bound to one endpoint, its tools, a lifetime and an actor.
 * The task token works for what it was granted and nothing more, the upstream never sees a
 * client credential, and every way to get more than the subject has is refused — each attack
 * its own test. The agent ends its task by revoking the token (RFC 7009).
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SignJWT } from "jose";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import {
  ALLOW_ALL_POLICY,
  createKey,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
} from "../helpers/gateway.js";
import { addUser } from "../helpers/oauthUser.js";
import { startTask } from "../helpers/tasks.js";
import {
  ACCESS_TOKEN_TYPE,
  claimsOf,
  exchange,
  registerExchangeClient,
  sdkUserTokens,
  TOKEN_EXCHANGE,
  taskDetails,
} from "../helpers/tokenExchange.js";
import { waitFor } from "../helpers/wait.js";

/** Allows every request, but no task may be granted `whoami`. */
const NO_WHOAMI_TASKS = resolve("test/fixtures/policies/no-whoami-tasks.yaml");

describe("RFC 8693 token exchange for task tokens", () => {
  let upstream: HttpUpstream;
  let gw: RunningGateway;
  let agent: string;
  let person: { username: string; password: string };

  before(async () => {
    upstream = await startHttpUpstream();
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        policy: { paths: [ALLOW_ALL_POLICY, NO_WHOAMI_TASKS] },
        servers: {
          // `slow` needs the `admin` scope on top of `mcp`: a person consenting to `mcp` cannot call it.
          remote: {
            transport: "http",
            url: upstream.url,
            oauth: { scopes: ["mcp"], tools: { slow: ["admin"] } },
          },
          other: { transport: "http", url: upstream.url },
        },
      },
    });
    agent = await registerExchangeClient(gw);
    person = await addUser(gw, "dana");
    // The gateway learns the upstream's tools (and their tiers) from a first listing.
    const lister = await createKey(gw, "lister", ["--servers", "remote"]);
    const list = modern(1, "tools/list", {}, lister.key);
    assert.equal((await rpc(gw.endpoint("remote"), list.body, list.headers)).status, 200);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  const remote = () => gw.endpoint("remote");
  const callTool = async (
    token: string,
    name: string,
    args: Record<string, unknown> = {},
    server = "remote",
  ) => {
    const call = modern(2, "tools/call", { name, arguments: args }, token);
    return rpc(gw.endpoint(server), call.body, call.headers);
  };
  /** The audit record of a token-exchange refusal matching `reason` (written asynchronously). */
  const refusalRecorded = async (reason: RegExp) => {
    const records = await auditRecordsUntil(
      gw,
      (x) => x.method === "oauth_token_exchange" && x.decision === "deny" && reason.test(x.reason),
    );
    return records.find((x) => x.method === "oauth_token_exchange" && reason.test(x.reason));
  };
  const fromKey = (key: string, details: Record<string, unknown>, extra: Record<string, string> = {}) =>
    exchange(gw, {
      client_id: agent,
      subject_token: key,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails(details),
      ...extra,
    });

  it("advertises the token-exchange grant and the task details type in the authorization server metadata", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as {
      grant_types_supported: string[];
      authorization_details_types_supported?: string[];
    };
    assert.ok(meta.grant_types_supported.includes(TOKEN_EXCHANGE));
    assert.deepEqual(meta.authorization_details_types_supported, ["urn:portcullis:task"], "RFC 9396 §10");
  });

  it("exchanges an API key for a 15-minute task token for one tool; the upstream never sees a client credential", async () => {
    const { key, id } = await createKey(gw, "standing", ["--servers", "remote"]);
    const before = upstream.requests.length;
    const r = await fromKey(key, { purpose: "echo a greeting", tools: ["echo"] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(r.body.token_type, "Bearer");
    const expiresIn = r.body.expires_in as number;
    assert.ok(expiresIn > 890 && expiresIn <= 900, `15 minutes by default, got ${expiresIn}`);
    const [details] = r.body.authorization_details as Record<string, unknown>[];
    assert.deepEqual(details?.tools, ["echo"]);
    assert.deepEqual(details?.locations, [remote()]);
    const token = r.body.access_token as string;
    const claims = claimsOf(token);
    assert.equal(claims.sub, `key:${id}`);
    assert.deepEqual(claims.act, { sub: `client:${agent}` }, "the actor is the client that exchanged");

    // An SDK client with the task token: the granted tool works, any other is refused.
    const transport = new StreamableHTTPClientTransport(new URL(remote()), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: "task-agent", version: "1" });
    await client.connect(transport);
    try {
      const echoed = await client.callTool({ name: "echo", arguments: { text: "hello from a task" } });
      assert.match(JSON.stringify(echoed), /hello from a task/);
      await assert.rejects(client.callTool({ name: "whoami", arguments: {} }));
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
    // …and on another server of the gateway, nothing.
    assert.equal((await callTool(token, "echo", { text: "x" }, "other")).status, 401);

    const seen = JSON.stringify(upstream.requests.slice(before));
    assert.ok(upstream.requests.length > before, "the upstream was called");
    assert.ok(
      upstream.requests.slice(before).every((q) => q.headers.authorization === undefined),
      "no Authorization header upstream",
    );
    assert.ok(!seen.includes(key), "the API key never reaches the upstream");
    assert.ok(!seen.includes(token), "nor does the task token");
    // The exchange is a policy decision on the audit trail, with the task, its origin and actor.
    const created = await auditRecordsUntil(
      gw,
      (x) => x.detail?.event === "task.created" && x.detail?.task === claims.task_id,
    );
    const record = created.find(
      (x) => x.detail?.event === "task.created" && x.detail?.task === claims.task_id,
    );
    assert.equal(record?.detail?.origin, "token_exchange");
    assert.deepEqual(record?.detail?.actor, { sub: `client:${agent}` });
    assert.equal(record?.principal, `key:${id}`);
  });

  it("exchanges a person's SDK-obtained token for a task token never wider than the person's", async () => {
    const { accessToken } = await sdkUserTokens(gw, person, "remote");
    const asPerson = (details: Record<string, unknown>, extra: Record<string, string> = {}) =>
      exchange(gw, {
        client_id: agent,
        subject_token: accessToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        resource: remote(),
        authorization_details: taskDetails(details),
        ...extra,
      });
    const ok = await asPerson({ purpose: "read for dana", tools: ["echo"], lifetime_seconds: 120 });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.scope, "mcp");
    const task = ok.body.access_token as string;
    assert.match(JSON.stringify((await callTool(task, "echo", { text: "as dana" })).json), /as dana/);

    // `slow` needs `admin`, which dana's token does not carry: not as a tool, not by asking the scope.
    const tool = await asPerson({ purpose: "escalate", tools: ["slow"], lifetime_seconds: 60 });
    assert.equal(tool.status, 400);
    assert.equal(tool.body.error, "invalid_scope");
    const whole = await asPerson({ purpose: "everything", lifetime_seconds: 60 });
    assert.equal(whole.body.error, "invalid_scope", "the whole server includes a tool dana cannot call");
    const scope = await asPerson(
      { purpose: "escalate", tools: ["echo"], lifetime_seconds: 60 },
      { scope: "mcp admin" },
    );
    assert.equal(scope.body.error, "invalid_scope");
    // Longer than dana's token lives (5 minutes).
    const longer = await asPerson({ purpose: "long", tools: ["echo"], lifetime_seconds: 900 });
    assert.equal(longer.status, 400);
    assert.equal(longer.body.error, "invalid_request");
  });

  it("refuses a person's task once the person's grant is revoked", async () => {
    const { accessToken, refreshToken, clientId } = await sdkUserTokens(gw, person, "remote");
    const r = await exchange(gw, {
      client_id: agent,
      subject_token: accessToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({
        purpose: "until dana signs out",
        tools: ["echo"],
        lifetime_seconds: 200,
      }),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const task = r.body.access_token as string;
    assert.equal((await callTool(task, "echo", { text: "live" })).status, 200);
    const revoked = await fetch(`${gw.url}/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: String(refreshToken), client_id: clientId }).toString(),
    });
    assert.equal(revoked.status, 200);
    await waitFor("the task refused with its owner's grant gone", async () => {
      return (await callTool(task, "echo", { text: "after" })).status === 401;
    });
  });

  it("lets a machine client exchange its own client_credentials token, authenticated with its secret", async () => {
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "nightly-triage",
      "--auth",
      "client_secret_basic",
      "--servers",
      "remote",
    ]);
    const id = created.clientId as string;
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(String(created.clientSecret))}`).toString("base64")}`;
    const token = async (params: Record<string, string>) => {
      const res = await fetch(`${gw.url}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic },
        body: new URLSearchParams(params).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const cc = await token({ grant_type: "client_credentials", resource: remote(), scope: "mcp" });
    assert.equal(cc.status, 200, JSON.stringify(cc.body));
    const r = await token({
      grant_type: TOKEN_EXCHANGE,
      subject_token: cc.body.access_token as string,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: JSON.stringify(
        taskDetails({ purpose: "nightly triage", tools: ["echo"], lifetime_seconds: 60 }),
      ),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const claims = claimsOf(r.body.access_token as string);
    assert.equal(claims.sub, `oauth:${gw.url}#${id}`);
    assert.deepEqual(claims.act, { sub: `client:${id}` });
    assert.equal((await callTool(r.body.access_token as string, "echo", { text: "machine" })).status, 200);
  });

  it("refuses an expired subject token, and audits the refusal", async () => {
    const { key, id } = await createKey(gw, "short-lived", ["--servers", "remote", "--expires", "2s"]);
    await sleep(2500);
    const r = await fromKey(key, { purpose: "too late", tools: ["echo"] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
    assert.equal(r.body.error_description, "the subject token is not acceptable", "generic to the client");
    const refusal = await refusalRecorded(/subject token: API key refused: key expired/);
    assert.equal(refusal?.credentialId, id);
  });

  it("refuses a revoked API key as subject token", async () => {
    const { key, id } = await createKey(gw, "revoked", ["--servers", "remote"]);
    await gw.cli(["keys", "revoke", id]);
    const r = await fromKey(key, { purpose: "after revocation", tools: ["echo"] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
    assert.equal((await refusalRecorded(/API key refused: key revoked/))?.credentialId, id);
  });

  it("refuses a person's token whose grant was revoked (RFC 7009 on its refresh token)", async () => {
    const { accessToken, refreshToken, clientId } = await sdkUserTokens(gw, person, "remote");
    assert.ok(refreshToken);
    const revoked = await fetch(`${gw.url}/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: refreshToken, client_id: clientId }).toString(),
    });
    assert.equal(revoked.status, 200);
    const r = await exchange(gw, {
      client_id: agent,
      subject_token: accessToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({
        purpose: "after revocation",
        tools: ["echo"],
        lifetime_seconds: 60,
      }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
  });

  it("refuses a subject token issued for another endpoint (foreign audience)", async () => {
    const { accessToken } = await sdkUserTokens(gw, person, "other");
    const r = await exchange(gw, {
      client_id: agent,
      subject_token: accessToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({ purpose: "cross servers", tools: ["echo"], lifetime_seconds: 60 }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_target");
  });

  it("refuses a subject token whose audience is not this gateway's", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const foreign = await new SignJWT({ client_id: "x", scope: "mcp" })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
      .setIssuer(gw.url)
      .setSubject("dana")
      .setAudience("https://elsewhere.example/mcp/remote")
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti("j1")
      .sign(privateKey);
    const r = await fromKey(foreign, { purpose: "foreign", tools: ["echo"] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
    assert.ok(await refusalRecorded(/audience is not one of this gateway's MCP endpoints/));
  });

  it("refuses asking for more tools than the subject API key has", async () => {
    const { key } = await createKey(gw, "echo-only", ["--servers", "remote:echo"]);
    const more = await fromKey(key, { purpose: "more", tools: ["echo", "whoami"] });
    assert.equal(more.status, 400);
    assert.equal(more.body.error, "invalid_scope");
    const whole = await fromKey(key, { purpose: "whole server" });
    assert.equal(whole.body.error, "invalid_scope");
    const otherServer = await exchange(gw, {
      client_id: agent,
      subject_token: key,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: gw.endpoint("other"),
      authorization_details: taskDetails({ purpose: "other", tools: ["echo"] }),
    });
    assert.equal(otherServer.body.error, "invalid_target");
  });

  it("refuses a task the policy forbids (access_denied, generic to the client, precise in the audit)", async () => {
    const { key } = await createKey(gw, "policy-bound", ["--servers", "remote"]);
    const r = await fromKey(key, { purpose: "who am I", tools: ["whoami"] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "access_denied");
    assert.equal(r.body.error_description, "the policy refuses this task");
    const records = await auditRecordsUntil(
      gw,
      (x) => x.detail?.event === "task.refused" && x.detail?.purpose === "who am I",
    );
    const refused = records.find(
      (x) => x.detail?.event === "task.refused" && x.detail?.purpose === "who am I",
    );
    assert.deepEqual(refused?.ruleIds, ["test-no-whoami-tasks"]);
  });

  it("refuses asking for a longer life than the subject API key has", async () => {
    const { key } = await createKey(gw, "ten-minutes", ["--servers", "remote", "--expires", "10m"]);
    const r = await fromKey(key, { purpose: "long", tools: ["echo"], lifetime_seconds: 900 });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
  });

  it("refuses act forgery: an unverifiable actor token, an actor in the details, an actor token without type", async () => {
    const { key } = await createKey(gw, "forgery", ["--servers", "remote"]);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const forged = await new SignJWT({ client_id: "admin", scope: "mcp" })
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
      .setIssuer(gw.url)
      .setSubject("admin")
      .setAudience(remote())
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti("forged")
      .sign(privateKey);
    const withForged = await fromKey(
      key,
      { purpose: "forged actor", tools: ["echo"] },
      { actor_token: forged, actor_token_type: ACCESS_TOKEN_TYPE },
    );
    assert.equal(withForged.status, 400);
    assert.equal(withForged.body.error, "invalid_request");
    assert.ok(await refusalRecorded(/actor token: JWT rejected/), "refused for its signature");
    const inDetails = await fromKey(key, {
      purpose: "act in details",
      tools: ["echo"],
      act: { sub: "admin" },
    });
    assert.equal(inDetails.body.error, "invalid_authorization_details");
    const untyped = await fromKey(key, { purpose: "untyped actor", tools: ["echo"] }, { actor_token: key });
    assert.equal(untyped.body.error, "invalid_request");
    // An `act` parameter is no parameter of the grant: ignored, the actor stays the client.
    const param = await fromKey(key, { purpose: "act param", tools: ["echo"] }, { act: '{"sub":"admin"}' });
    assert.equal(param.status, 200, JSON.stringify(param.body));
    assert.deepEqual(claimsOf(param.body.access_token as string).act, { sub: `client:${agent}` });
  });

  it("keeps the delegation chain when a task token is exchanged again with an actor", async () => {
    const { key, id } = await createKey(gw, "delegator", ["--servers", "remote"]);
    const first = await fromKey(key, { purpose: "parent task", tools: ["echo", "slow"] });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const sub = await createKey(gw, "sub-agent", ["--servers", "remote"]);
    const second = await exchange(gw, {
      client_id: agent,
      subject_token: first.body.access_token as string,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: sub.key,
      actor_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({ purpose: "child task", tools: ["echo"], lifetime_seconds: 300 }),
    });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const claims = claimsOf(second.body.access_token as string);
    assert.equal(claims.sub, `key:${id}`, "the owner stays the original subject");
    assert.deepEqual(claims.act, { sub: `key:${sub.id}`, act: { sub: `client:${agent}` } });
    assert.match(
      JSON.stringify((await callTool(second.body.access_token as string, "echo", { text: "child" })).json),
      /child/,
    );
    // The child can never hold more than its parent task.
    const wider = await exchange(gw, {
      client_id: agent,
      subject_token: second.body.access_token as string,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({ purpose: "grandchild", tools: ["slow"], lifetime_seconds: 60 }),
    });
    assert.equal(wider.body.error, "invalid_scope");
  });

  it("ends the task when the agent revokes its task token (RFC 7009); another client cannot", async () => {
    const { key } = await createKey(gw, "revoker", ["--servers", "remote"]);
    const r = await fromKey(key, { purpose: "short job", tools: ["echo"] });
    const token = r.body.access_token as string;
    assert.equal((await callTool(token, "echo", { text: "before" })).status, 200);
    const revoke = (clientId: string) =>
      fetch(`${gw.url}/token/revocation`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, client_id: clientId }).toString(),
      });
    const stranger = await registerExchangeClient(gw, "stranger");
    assert.equal((await revoke(stranger)).status, 200, "RFC 7009 §2.2: no error for a token not its own");
    assert.equal((await callTool(token, "echo", { text: "still" })).status, 200, "and the task goes on");
    const own = await revoke(agent);
    assert.equal(own.status, 200);
    assert.equal(await own.text(), "");
    assert.equal(
      (await callTool(token, "echo", { text: "after" })).status,
      401,
      "refused from the next request",
    );
  });

  it("an agent holding a task token made by `portcullis tasks start` ends it by RFC 7009 revocation", async () => {
    const { id } = await createKey(gw, "cli owner", ["--servers", "remote"]);
    const { token } = await startTask(gw, id, { purpose: "handed to an agent", grants: ["remote:echo"] });
    assert.equal((await callTool(token, "echo", { text: "before" })).status, 200);
    const res = await fetch(`${gw.url}/token/revocation`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, client_id: agent }).toString(),
    });
    assert.equal(res.status, 200);
    assert.equal(
      (await callTool(token, "echo", { text: "after" })).status,
      401,
      "refused from the next request",
    );
  });

  it("refuses the grant to a client not registered for it", async () => {
    const reg = await fetch(`${gw.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "code only",
        application_type: "native",
        redirect_uris: ["http://127.0.0.1/cb"],
        token_endpoint_auth_method: "none",
      }),
    });
    const codeOnly = String(((await reg.json()) as Record<string, unknown>).client_id);
    const { key } = await createKey(gw, "wrong-client", ["--servers", "remote"]);
    const r = await exchange(gw, {
      client_id: codeOnly,
      subject_token: key,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: remote(),
      authorization_details: taskDetails({ purpose: "p", tools: ["echo"] }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "unauthorized_client");
    const refusal = await refusalRecorded(/grant type is not allowed for this client/);
    assert.equal(refusal?.detail?.client_id, codeOnly, "refused before the grant ran, and still audited");
  });

  it("refuses a JWT-SVID subject while no SPIFFE trust domain is configured", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const svid = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", typ: "JWT" })
      .setSubject("spiffe://example.org/ci/job")
      .setAudience(remote())
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    const r = await exchange(gw, {
      client_id: agent,
      subject_token: svid,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      resource: remote(),
      authorization_details: taskDetails({ purpose: "workload", tools: ["echo"] }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, "invalid_request");
    assert.ok(await refusalRecorded(/no SPIFFE trust domain is configured/));
  });
});
