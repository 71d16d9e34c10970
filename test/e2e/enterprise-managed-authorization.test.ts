/**
 * Enterprise-managed authorization (MCP extension; draft-ietf-oauth-identity-assertion-authz-
 * grant): a real enterprise IdP process (test/fixtures/oidc-idp.ts, profile `enterprise`)
 * signs a user in, exchanges the ID token for an ID-JAG (RFC 8693), and the gateway's
 * built-in authorization server redeems it with the RFC 7523 jwt-bearer grant for an access
 * token bound to one MCP endpoint, which the official v2 SDK client's CrossAppAccessProvider
 * uses to call a tool. Then the attacks, each refused with an RFC 6749 §5.2 error and an
 * audit record naming the precise reason: wrong `aud`, wrong `typ`, replayed `jti` (also
 * across two gateway processes on one PostgreSQL), mismatched `client_id`, an untrusted
 * issuer, a signature by an unknown key, an expired assertion, a resource that is not ours.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  Client as ClientV2,
  CrossAppAccessProvider,
  requestJwtAuthorizationGrant,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { decodeJwt, decodeProtectedHeader, importJWK, type JWTPayload, SignJWT } from "jose";
import { request } from "undici";
import { stringify as stringifyYaml } from "yaml";
import type { AuditRecord } from "../../src/store/types.js";
import { IDP_SECRETS, type IdpProcess, idTokenFor, startIdpProcess } from "../fixtures/oidc-idp.js";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import {
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  runCli,
  startGateway,
  tempDir,
} from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";
import { freePort } from "../helpers/net.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag";
const ALICE = { login: "alice", password: "alice-pw" };

interface TokenAnswer {
  status: number;
  json: Record<string, string>;
}

/**
 * A jwt-bearer token request at the gateway (or at `origin` with the public Host, a replica
 * behind a load balancer), the client authenticated with client_secret_basic.
 */
async function redeem(
  gw: Pick<RunningGateway, "url">,
  assertion: string,
  client: { id: string; secret: string },
  extra: Record<string, string> = {},
  origin: string = gw.url,
): Promise<TokenAnswer> {
  const res = await request(`${origin}/token`, {
    method: "POST",
    headers: {
      host: new URL(gw.url).host,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...extra }).toString(),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, string> };
}

/** The SDK's own ID-JAG request (RFC 8693 token exchange at the IdP). */
async function idJagFrom(
  idp: IdpProcess,
  idToken: string,
  audience: string,
  resource: string,
  scope = "mcp",
): Promise<string> {
  const result = await requestJwtAuthorizationGrant({
    tokenEndpoint: `${idp.issuer}/token`,
    audience,
    resource,
    idToken,
    clientId: "agent",
    clientSecret: IDP_SECRETS.agent,
    scope,
  });
  return result.jwtAuthGrant;
}

/** An ID-JAG signed with the IdP's own key (or `key`), for shapes the IdP would never issue. */
async function forge(
  idp: IdpProcess,
  claims: JWTPayload,
  header: { typ?: string } = {},
  key?: { jwk: Record<string, unknown>; kid: string },
): Promise<string> {
  const signing = idp.idJag?.signingJwk;
  assert.ok(signing, "the enterprise IdP prints its ID-JAG signing key");
  const jwk = key?.jwk ?? signing;
  return new SignJWT(claims)
    .setProtectedHeader({
      alg: "RS256",
      kid: key?.kid ?? String(signing.kid),
      typ: header.typ ?? "oauth-id-jag+jwt",
    })
    .sign(await importJWK(jwk, "RS256"));
}

function refusal(records: AuditRecord[], needle: string): AuditRecord | undefined {
  return records.find(
    (r) => r.method === "oauth_id_jag" && r.decision === "deny" && r.reason.includes(needle),
  );
}

async function assertRefusedAndAudited(
  gw: RunningGateway,
  answer: TokenAnswer,
  error: string,
  reason: string,
): Promise<void> {
  assert.equal(answer.status, 400, JSON.stringify(answer.json));
  assert.equal(answer.json.error, error, JSON.stringify(answer.json));
  assert.equal(answer.json.access_token, undefined);
  assert.ok(!JSON.stringify(answer.json).includes(reason), "the precise reason stays in the audit trail");
  const records = await auditRecordsUntil(gw, (r) => refusal([r], reason) !== undefined);
  const record = refusal(records, reason);
  assert.ok(record, `an audit record saying ${reason}`);
  assert.equal(record.decision, "deny");
}

/**
 * `portcullis clients create … --json` before the gateway runs, with `config` written to
 * `dir/portcullis.yaml` (what startGateway will also use): the IdP must know the client's id
 * (its ID-JAGs name it) and the gateway's config the IdP's issuer, so the clients come first,
 * then the IdP (on any free port), then the gateway.
 */
async function machineClientsBeforeStart(
  dir: string,
  config: Record<string, unknown>,
  names: string[],
  env: Record<string, string> = {},
): Promise<Array<{ id: string; secret: string }>> {
  const configFile = join(dir, "portcullis.yaml");
  writeFileSync(configFile, stringifyYaml({ dataDir: join(dir, "data"), ...config }));
  const created: Array<{ id: string; secret: string }> = [];
  for (const name of names) {
    const r = await runCli(
      ["clients", "create", "--name", name, "--auth", "client_secret_basic", "--servers", "demo"].concat([
        "--config",
        configFile,
        "--json",
      ]),
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const client = JSON.parse(r.stdout) as { clientId: string; clientSecret: string };
    created.push({ id: client.clientId, secret: client.clientSecret });
  }
  return created;
}

describe("enterprise-managed authorization: ID-JAG redeemed at the built-in authorization server", () => {
  let gw: RunningGateway;
  let idp: IdpProcess;
  let stranger: IdpProcess;
  let agent: { id: string; secret: string };
  let otherClient: { id: string; secret: string };
  let idToken: string;
  const now = () => Math.floor(Date.now() / 1000);

  let dir: string;

  before(async () => {
    dir = tempDir();
    const servers = {
      demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
      other: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
    };
    const base = { environment: "dev", oauth: { mode: "builtin" }, servers };
    [agent, otherClient] = (await machineClientsBeforeStart(dir, base, ["chat-agent", "another-app"])) as [
      { id: string; secret: string },
      { id: string; secret: string },
    ];
    [idp, stranger] = await Promise.all([
      startIdpProcess({ profile: "enterprise", idJagClientId: agent.id }),
      startIdpProcess({ profile: "enterprise", idJagClientId: agent.id }),
    ]);
    gw = await startGateway({
      dir,
      config: { ...base, oauth: { mode: "builtin", enterprise: { idps: [{ issuer: idp.issuer }] } } },
    });
    idToken = await idTokenFor(idp, ALICE);
  });
  after(async () => {
    await Promise.all([gw?.stop(), idp?.stop(), stranger?.stop()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("advertises the jwt-bearer grant and the id-jag grant profile in its metadata", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      string[]
    >;
    assert.ok(meta.grant_types_supported?.includes(JWT_BEARER), JSON.stringify(meta.grant_types_supported));
    assert.deepEqual(meta.authorization_grant_profiles_supported, [ID_JAG_PROFILE]);
  });

  it("lets an SDK v2 client with CrossAppAccessProvider call a tool with a token redeemed from the IdP's ID-JAG", async () => {
    const seen: Array<{ audience: string; resource: string }> = [];
    const provider = new CrossAppAccessProvider({
      assertion: async (ctx) => {
        seen.push({ audience: String(ctx.authorizationServerUrl), resource: String(ctx.resourceUrl) });
        const result = await requestJwtAuthorizationGrant({
          tokenEndpoint: `${idp.issuer}/token`,
          audience: ctx.authorizationServerUrl,
          resource: ctx.resourceUrl,
          idToken,
          clientId: "agent",
          clientSecret: IDP_SECRETS.agent,
          ...(ctx.scope === undefined ? {} : { scope: ctx.scope }),
          fetchFn: ctx.fetchFn,
        });
        return result.jwtAuthGrant;
      },
      clientId: agent.id,
      clientSecret: agent.secret,
      expectedIssuer: gw.url,
    });
    const client = new ClientV2({ name: "enterprise-agent", version: "1.0.0" });
    await client.connect(new TransportV2(new URL(gw.endpoint("demo")), { authProvider: provider }));
    try {
      const r = await client.callTool({ name: "echo", arguments: { text: "managed by the enterprise" } });
      assert.ok(textOf(r).includes("managed by the enterprise"));
    } finally {
      await client.close();
    }
    assert.deepEqual(seen, [{ audience: gw.url, resource: gw.endpoint("demo") }]);
    const token = provider.tokens()?.access_token;
    assert.ok(token);
    const claims = decodeJwt(token);
    assert.equal(claims.aud, gw.endpoint("demo"), "bound to the one MCP endpoint the ID-JAG names");
    assert.equal(claims.client_id, agent.id);
    assert.match(String(claims.sub), /^fed:[A-Za-z0-9_-]{16}#a11ce000-0000-4000-8000-000000000001$/);
    assert.equal(claims.email, "alice@example.test");
    assert.deepEqual(claims.groups, ["admins"]);
    const records = await auditRecordsUntil(
      gw,
      (r) => r.method === "oauth_id_jag" && r.decision === "allow" && r.credentialId === agent.id,
    );
    const issued = records.find((r) => r.method === "oauth_id_jag" && r.decision === "allow");
    assert.equal(issued?.principal, `oauth:${gw.url}#${String(claims.sub)}`);
    assert.equal(issued?.server, "demo");
    assert.equal((issued?.detail as Record<string, unknown>).idp, idp.issuer);
    assert.ok(!JSON.stringify(records).includes(idToken.split(".")[2] ?? "x"), "no token is audited");
  });

  it("issues a token bound to the ID-JAG's resource only: refused at another MCP endpoint", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    const answer = await redeem(gw, jag, agent, { resource: gw.endpoint("demo"), scope: "mcp" });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json.token_type, "Bearer");
    assert.equal(answer.json.scope, "mcp");
    assert.equal(answer.json.refresh_token, undefined, "no refresh token: the client redeems a fresh ID-JAG");
    const here = modern(1, "tools/list", {}, answer.json.access_token);
    assert.equal((await rpc(gw.endpoint("demo"), here.body, here.headers)).status, 200);
    const there = modern(2, "tools/list", {}, answer.json.access_token);
    assert.equal((await rpc(gw.endpoint("other"), there.body, there.headers)).status, 401);
  });

  it("rejects-id-jag-for-another-audience: an ID-JAG the IdP issued for another authorization server", async () => {
    const jag = await idJagFrom(idp, idToken, "http://127.0.0.1:1", "http://127.0.0.1:1/mcp/demo");
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "is not this authorization server",
    );
  });

  it("rejects-wrong-typ: the user's ID token (same IdP, same keys) presented as the assertion", async () => {
    const typ = decodeProtectedHeader(idToken).typ;
    const said = typ === undefined ? "typ is absent" : `typ is ${JSON.stringify(typ)}`;
    await assertRefusedAndAudited(gw, await redeem(gw, idToken, agent), "invalid_grant", said);
  });

  it("rejects-wrong-typ: an otherwise valid ID-JAG signed by the IdP with typ JWT", async () => {
    const jag = await forge(
      idp,
      {
        iss: idp.issuer,
        sub: "a11ce000-0000-4000-8000-000000000001",
        aud: gw.url,
        client_id: agent.id,
        resource: gw.endpoint("demo"),
        scope: "mcp",
        jti: randomUUID(),
        iat: now(),
        exp: now() + 120,
      },
      { typ: "JWT" },
    );
    await assertRefusedAndAudited(gw, await redeem(gw, jag, agent), "invalid_grant", 'typ is "JWT"');
  });

  it("rejects-replayed-jti: the same ID-JAG redeemed twice", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    assert.equal((await redeem(gw, jag, agent)).status, 200);
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "already redeemed (replay)",
    );
  });

  it("rejects-replayed-jti: concurrent redemptions of one ID-JAG issue exactly one token", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    const answers = await Promise.all(Array.from({ length: 8 }, () => redeem(gw, jag, agent)));
    const summary = JSON.stringify(answers.map((a) => [a.status, a.json.error ?? "token"]));
    assert.equal(answers.filter((a) => a.status === 200).length, 1, summary);
    assert.ok(
      answers.every((a) => a.status === 200 || a.json.error === "invalid_grant"),
      summary,
    );
  });

  it("rejects-mismatched-client-id: an ID-JAG issued for one client redeemed by another", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, otherClient),
      "invalid_grant",
      "not the authenticated client",
    );
    assert.equal((await redeem(gw, jag, agent)).status, 200, "a refused attempt does not burn the assertion");
  });

  it("rejects-untrusted-issuer: an ID-JAG from an IdP the gateway was not configured with", async () => {
    const jag = await idJagFrom(stranger, await idTokenFor(stranger, ALICE), gw.url, gw.endpoint("demo"));
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "is not a trusted enterprise IdP",
    );
  });

  it("rejects-unknown-signing-key: an ID-JAG naming the trusted issuer signed by another key", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const kid = String(idp.idJag?.signingJwk.kid);
    const jag = await forge(
      idp,
      {
        iss: idp.issuer,
        sub: "a11ce000-0000-4000-8000-000000000001",
        aud: gw.url,
        client_id: agent.id,
        resource: gw.endpoint("demo"),
        scope: "mcp",
        jti: randomUUID(),
        iat: now(),
        exp: now() + 120,
      },
      {},
      { jwk: privateKey.export({ format: "jwk" }) as Record<string, unknown>, kid },
    );
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    );
  });

  it("rejects-expired-assertion: an ID-JAG past its exp", async () => {
    const jag = await forge(idp, {
      iss: idp.issuer,
      sub: "a11ce000-0000-4000-8000-000000000001",
      aud: gw.url,
      client_id: agent.id,
      resource: gw.endpoint("demo"),
      scope: "mcp",
      jti: randomUUID(),
      iat: now() - 400,
      exp: now() - 100,
    });
    await assertRefusedAndAudited(gw, await redeem(gw, jag, agent), "invalid_grant", "ERR_JWT_EXPIRED");
  });

  it("rejects-overlong-assertion: an ID-JAG living longer than the accepted maximum", async () => {
    const jag = await forge(idp, {
      iss: idp.issuer,
      sub: "a11ce000-0000-4000-8000-000000000001",
      aud: gw.url,
      client_id: agent.id,
      resource: gw.endpoint("demo"),
      scope: "mcp",
      jti: randomUUID(),
      iat: now(),
      exp: now() + 86_400,
    });
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "more than the 600 s accepted",
    );
  });

  it("rejects-resource-not-ours: an ID-JAG naming an MCP endpoint this gateway does not serve", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, `${gw.url}/mcp/payroll`);
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_grant",
      "is not an MCP endpoint of this gateway",
    );
  });

  it("rejects a token request whose resource differs from the ID-JAG's (invalid_target)", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent, { resource: gw.endpoint("other") }),
      "invalid_target",
      "differs from the ID-JAG's",
    );
  });

  it("rejects an ID-JAG for an endpoint the machine client may not reach (invalid_target)", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("other"));
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, agent),
      "invalid_target",
      "may not obtain tokens for",
    );
  });

  it("disabling the person's account ends the token at once and refuses further ID-JAGs", async () => {
    const bobToken = await idTokenFor(idp, { login: "bob", password: "bob-pw" });
    const answer = await redeem(gw, await idJagFrom(idp, bobToken, gw.url, gw.endpoint("demo")), agent);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    const call = () => {
      const req = modern(3, "tools/list", {}, answer.json.access_token);
      return rpc(gw.endpoint("demo"), req.body, req.headers);
    };
    assert.equal((await call()).status, 200);
    const account = String(decodeJwt(answer.json.access_token as string).sub);
    const disabled = await gw.cli(["users", "disable", account]);
    assert.equal(disabled.grantsRevoked, 1);
    assert.equal((await call()).status, 401, "the revoked grant's token is refused");
    const again = await redeem(gw, await idJagFrom(idp, bobToken, gw.url, gw.endpoint("demo")), agent);
    await assertRefusedAndAudited(gw, again, "invalid_grant", "is disabled");
  });

  it("rejects-revoked-machine-client: revoking the client ends its ID-JAG token from the next request", async () => {
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "soon-revoked",
      "--auth",
      "client_secret_basic",
      "--servers",
      "demo",
    ]);
    const client = { id: created.clientId as string, secret: created.clientSecret as string };
    // What the IdP issues when it maps the MCP client to this machine client.
    const jag = await forge(idp, {
      iss: idp.issuer,
      sub: "a11ce000-0000-4000-8000-000000000001",
      aud: gw.url,
      client_id: client.id,
      resource: gw.endpoint("demo"),
      scope: "mcp",
      jti: randomUUID(),
      iat: now(),
      exp: now() + 120,
    });
    const answer = await redeem(gw, jag, client);
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    const call = () => {
      const req = modern(4, "tools/list", {}, answer.json.access_token);
      return rpc(gw.endpoint("demo"), req.body, req.headers);
    };
    assert.equal((await call()).status, 200);
    assert.equal((await call()).status, 200, "second use comes from the verified-token cache");
    await gw.cli(["clients", "revoke", client.id]);
    assert.equal((await call()).status, 401);
  });

  it("rejects-public-client: a self-registered public client may not redeem an ID-JAG (unauthorized_client)", async () => {
    const reg = await fetch(`${gw.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none" }),
    });
    const registered = (await reg.json()) as { client_id: string };
    assert.equal(reg.status, 201, JSON.stringify(registered));
    const jag = await forge(idp, {
      iss: idp.issuer,
      sub: "a11ce000-0000-4000-8000-000000000001",
      aud: gw.url,
      client_id: registered.client_id,
      resource: gw.endpoint("demo"),
      scope: "mcp",
      jti: randomUUID(),
      iat: now(),
      exp: now() + 120,
    });
    const res = await fetch(`${gw.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: jag, client_id: registered.client_id }),
    });
    const answer = { status: res.status, json: (await res.json()) as Record<string, string> };
    await assertRefusedAndAudited(gw, answer, "unauthorized_client", "only machine clients");
  });

  it("lists every ID-JAG decision in `portcullis audit search --method oauth_id_jag`", async () => {
    const r = await runCli([
      "audit",
      "search",
      "--method",
      "oauth_id_jag",
      "--limit",
      "200",
      "--config",
      gw.configFile,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { method: string; decision: string });
    assert.ok(rows.length > 5);
    assert.ok(rows.every((row) => row.method === "oauth_id_jag"));
    assert.ok(rows.some((row) => row.decision === "allow") && rows.some((row) => row.decision === "deny"));
  });

  it("`portcullis doctor` finds the IdP's signing keys as the gateway does", async () => {
    const r = await runCli(["doctor", "--no-probe", "--timeout", "5", "--config", gw.configFile, "--json"]);
    const report = JSON.parse(r.stdout) as {
      checks: Array<{ check: string; status: string; detail: string }>;
    };
    const check = report.checks.find((c) => c.check === `enterprise:${idp.issuer}`);
    assert.equal(check?.status, "ok", JSON.stringify(report.checks));
    assert.match(check?.detail ?? "", new RegExp(`2 signing keys at ${idp.issuer}/jwks`));
  });

  it("`portcullis doctor` fails an IdP whose keys cannot be found, naming the field to fix", async () => {
    const configFile = join(dir, "unreachable-idp.yaml");
    writeFileSync(
      configFile,
      stringifyYaml({
        dataDir: join(dir, "data"),
        environment: "dev",
        oauth: { mode: "builtin", enterprise: { idps: [{ issuer: "http://127.0.0.1:1" }] } },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      }),
    );
    const r = await runCli(["doctor", "--no-probe", "--timeout", "5", "--config", configFile, "--json"]);
    assert.equal(r.code, 1);
    const report = JSON.parse(r.stdout) as { checks: Array<{ check: string; status: string; fix?: string }> };
    const check = report.checks.find((c) => c.check === "enterprise:http://127.0.0.1:1");
    assert.equal(check?.status, "fail", JSON.stringify(report.checks));
    assert.match(check?.fix ?? "", /oauth\.enterprise\.idps\[\]\.issuer/);
  });

  it("refuses a client whose credentials fail, before looking at the assertion (invalid_client)", async () => {
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    const answer = await redeem(gw, jag, { id: agent.id, secret: "not-the-secret" });
    assert.equal(answer.status, 401);
    assert.equal(answer.json.error, "invalid_client");
    assert.equal((await redeem(gw, jag, agent)).status, 200, "the assertion was not consumed");
  });
});

describe("enterprise-managed authorization: the IdP's clients allow-list (explicit jwksUri)", () => {
  let gw: RunningGateway;
  let idp: IdpProcess;
  let allowed: { id: string; secret: string };
  let refused: { id: string; secret: string };
  let dir: string;

  before(async () => {
    dir = tempDir();
    const servers = { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } };
    const base = { environment: "dev", oauth: { mode: "builtin" }, servers };
    [allowed, refused] = (await machineClientsBeforeStart(dir, base, ["allowed-app", "other-app"])) as [
      { id: string; secret: string },
      { id: string; secret: string },
    ];
    idp = await startIdpProcess({ profile: "enterprise", idJagClientId: refused.id });
    const issuer = idp.issuer;
    gw = await startGateway({
      dir,
      config: {
        environment: "dev",
        oauth: {
          mode: "builtin",
          enterprise: { idps: [{ issuer, jwksUri: `${issuer}/jwks`, clients: [allowed.id] }] },
        },
        servers,
      },
    });
  });
  after(async () => {
    await Promise.all([gw?.stop(), idp?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("rejects-client-not-allowed-for-the-idp: a valid ID-JAG for a machine client the IdP entry does not list (unauthorized_client)", async () => {
    const idToken = await idTokenFor(idp, ALICE);
    const jag = await idJagFrom(idp, idToken, gw.url, gw.endpoint("demo"));
    await assertRefusedAndAudited(
      gw,
      await redeem(gw, jag, refused),
      "unauthorized_client",
      "is not among the clients allowed",
    );
  });
});

const SECRET_VAR = "PORTCULLIS_ENTERPRISE_REPLICA_SECRET";

describe("enterprise-managed authorization across two gateway replicas on PostgreSQL", {
  skip: await postgresSkip(),
}, () => {
  let db: TestDatabase;
  let a: RunningGateway;
  let b: RunningGateway;
  let bOrigin: string;
  let idp: IdpProcess;
  let agent: { id: string; secret: string };
  let idToken: string;

  let dir: string;

  before(async () => {
    db = await createTestDatabase();
    dir = tempDir();
    const env = { [SECRET_VAR]: randomBytes(48).toString("base64") };
    const base = {
      environment: "dev",
      store: db.url,
      serverSecret: { env: SECRET_VAR },
      oauth: { mode: "builtin" },
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
    };
    [agent] = (await machineClientsBeforeStart(dir, base, ["chat-agent"], env)) as [
      { id: string; secret: string },
    ];
    idp = await startIdpProcess({ profile: "enterprise", idJagClientId: agent.id });
    const config = { ...base, oauth: { mode: "builtin", enterprise: { idps: [{ issuer: idp.issuer }] } } };
    a = await startGateway({ config, env });
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
    idToken = await idTokenFor(idp, ALICE);
  });
  after(async () => {
    await Promise.all([b?.stop(), idp?.stop()]);
    await a?.stop();
    await db?.drop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("rejects-replayed-jti-on-another-replica: an ID-JAG redeemed at one replica is refused at the other", async () => {
    const jag = await idJagFrom(idp, idToken, a.url, a.endpoint("demo"));
    const first = await redeem(a, jag, agent);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const replayed = await redeem(a, jag, agent, {}, bOrigin);
    assert.equal(replayed.status, 400, JSON.stringify(replayed.json));
    assert.equal(replayed.json.error, "invalid_grant");
    const fresh = await idJagFrom(idp, idToken, a.url, a.endpoint("demo"));
    const atB = await redeem(a, fresh, agent, {}, bOrigin);
    assert.equal(atB.status, 200, `a fresh ID-JAG works at replica B: ${JSON.stringify(atB.json)}`);
  });
});
