/**
 * Machine clients on the built-in authorization server (MCP extension
 * "oauth-client-credentials"): the operator creates a client with the real CLI, the official
 * v2 SDK client connects with its client-credentials providers (private_key_jwt, RFC 7523,
 * and client_secret_basic) and calls a tool through the gateway. Then the attacks: a revoked
 * client's cached token, a replayed or foreign-signed client assertion, a wrong secret, a
 * self-registered client asking for client_credentials, and a token for another resource.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ClientCredentialsProvider,
  Client as ClientV2,
  PrivateKeyJwtProvider,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { SignJWT } from "jose";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { openStore } from "../../src/store/open.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, runCli, startGateway } from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";
import { createTestDatabase, postgresSkip, type TestDatabase } from "../helpers/postgres.js";

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function ecKeyPair(): { publicKey: KeyObject; privateKey: KeyObject; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKey,
    privateKey,
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

function writeJwks(dir: string, publicKey: KeyObject): string {
  const file = join(dir, `client-${randomUUID()}.jwks.json`);
  writeFileSync(file, JSON.stringify({ keys: [publicKey.export({ format: "jwk" })] }));
  return file;
}

/**
 * Sends the same client assertion (one jti) in `n` token requests at once: oidc-provider
 * looks the jti up and then records it, so without an atomic insert several could pass.
 */
async function raceOneAssertion(
  gw: RunningGateway,
  clientId: string,
  signer: KeyObject,
  n = 12,
): Promise<Array<{ status: number; json: Record<string, string> }>> {
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "ES256" })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(gw.url)
    .setIssuedAt()
    .setExpirationTime("2m")
    .setJti(randomUUID())
    .sign(signer);
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: assertion,
    resource: gw.endpoint("demo"),
    scope: "mcp",
  }).toString();
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fetch(`${gw.url}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body,
      });
      return { status: res.status, json: (await res.json()) as Record<string, string> };
    }),
  );
}

function assertExactlyOneIssued(results: Array<{ status: number; json: Record<string, string> }>): void {
  const summary = JSON.stringify(results.map((r) => [r.status, r.json.error ?? "token"]));
  assert.equal(results.filter((r) => r.status === 200).length, 1, summary);
  for (const r of results.filter((x) => x.status !== 200)) {
    assert.equal(r.status, 401, summary);
    assert.equal(r.json.error, "invalid_client", summary);
  }
}

describe("machine clients (client_credentials) on the built-in authorization server", () => {
  let gw: RunningGateway;
  const key = ecKeyPair();
  let jwtClient: string;
  let basicClient: string;
  let basicSecret: string;

  const assertion = (clientId: string, signer: KeyObject = key.privateKey, jti: string = randomUUID()) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(gw.url)
      .setIssuedAt()
      .setExpirationTime("2m")
      .setJti(jti)
      .sign(signer);

  const tokenRequest = async (body: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gw.url}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
        ...headers,
      },
      body: new URLSearchParams({ grant_type: "client_credentials", ...body }),
    });
    return { status: res.status, json: (await res.json()) as Record<string, string> };
  };
  const basic = (id: string, secret: string) => ({
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`,
  });
  const listTools = (token: string, server = "demo") => {
    const call = modern(1, "tools/list", {}, token);
    return rpc(gw.endpoint(server), call.body, call.headers);
  };

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: {
          demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
          other: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] },
        },
      },
    });
    const pem = join(gw.dir, "client-public.pem");
    writeFileSync(pem, key.publicKey.export({ format: "pem", type: "spki" }).toString());
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "nightly-report",
      "--auth",
      "private_key_jwt",
      "--public-key",
      pem,
      "--servers",
      "demo",
    ]);
    jwtClient = created.clientId as string;
    assert.match(jwtClient, /^mc_/);
    assert.equal(created.clientSecret, undefined, "private_key_jwt: no secret exists at all");
    const withSecret = await gw.cli([
      "clients",
      "create",
      "--name",
      "ci-sync",
      "--auth",
      "client_secret_basic",
      "--servers",
      "demo,other",
    ]);
    basicClient = withSecret.clientId as string;
    basicSecret = withSecret.clientSecret as string;
    assert.ok(basicSecret.length >= 43);
  });
  after(async () => {
    await gw.stop();
  });

  it("advertises client_credentials with private_key_jwt and client_secret_basic in the AS metadata", async () => {
    const meta = (await (await fetch(`${gw.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      string[]
    >;
    assert.ok(meta.grant_types_supported?.includes("client_credentials"));
    assert.ok(meta.token_endpoint_auth_methods_supported?.includes("private_key_jwt"));
    assert.ok(meta.token_endpoint_auth_methods_supported?.includes("client_secret_basic"));
    assert.ok(meta.token_endpoint_auth_signing_alg_values_supported?.includes("ES256"));
    // Enterprise-managed authorization (ID-JAG) is advertised only when oauth.enterprise is configured.
    assert.equal(meta.grant_types_supported?.includes("urn:ietf:params:oauth:grant-type:jwt-bearer"), false);
    assert.equal(meta.authorization_grant_profiles_supported, undefined);
  });

  it("lets an SDK v2 client with private_key_jwt call a tool through the gateway", async () => {
    const provider = new PrivateKeyJwtProvider({
      clientId: jwtClient,
      privateKey: key.privatePem,
      algorithm: "ES256",
      expectedIssuer: gw.url,
      scope: "mcp",
    });
    const client = new ClientV2({ name: "machine-jwt", version: "1.0.0" });
    await client.connect(new TransportV2(new URL(gw.endpoint("demo")), { authProvider: provider }));
    try {
      const r = await client.callTool({ name: "echo", arguments: { text: "from a machine" } });
      assert.ok(textOf(r).includes("from a machine"));
    } finally {
      await client.close();
    }
  });

  it("lets an SDK v2 client with client_secret_basic call a tool through the gateway", async () => {
    const provider = new ClientCredentialsProvider({
      clientId: basicClient,
      clientSecret: basicSecret,
      expectedIssuer: gw.url,
      scope: "mcp",
    });
    const client = new ClientV2({ name: "machine-basic", version: "1.0.0" });
    await client.connect(new TransportV2(new URL(gw.endpoint("other")), { authProvider: provider }));
    try {
      const r = await client.callTool({ name: "echo", arguments: { text: "basic works" } });
      assert.ok(textOf(r).includes("basic works"));
    } finally {
      await client.close();
    }
  });

  it("grants-allowed-scopes-when-none-requested (RFC 6749 §3.3 default) to a bare token request", async () => {
    const r = await tokenRequest({ resource: gw.endpoint("demo") }, basic(basicClient, basicSecret));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.scope, "mcp");
    assert.equal((await listTools(r.json.access_token as string)).status, 200);
    const claims = JSON.parse(
      Buffer.from((r.json.access_token as string).split(".")[1] ?? "", "base64url").toString(),
    ) as { scope?: string };
    assert.equal(claims.scope, "mcp");
  });

  it("grants-allowed-scopes-when-none-requested to an SDK v2 provider without a scope option", async () => {
    const tokenBodies: string[] = [];
    const recording = async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.endsWith("/token")) {
        // Whatever scope the SDK picked from the challenge, this client sends none.
        const form = new URLSearchParams(String(init?.body ?? ""));
        form.delete("scope");
        tokenBodies.push(form.toString());
        return fetch(input, { ...init, body: form });
      }
      return fetch(input, init);
    };
    const provider = new PrivateKeyJwtProvider({
      clientId: jwtClient,
      privateKey: key.privatePem,
      algorithm: "ES256",
      expectedIssuer: gw.url,
    });
    const client = new ClientV2({ name: "machine-no-scope", version: "1.0.0" });
    await client.connect(
      new TransportV2(new URL(gw.endpoint("demo")), { authProvider: provider, fetch: recording }),
    );
    try {
      const r = await client.callTool({ name: "echo", arguments: { text: "default scope" } });
      assert.ok(textOf(r).includes("default scope"));
    } finally {
      await client.close();
    }
    assert.equal(tokenBodies.length, 1, "one token request, not a retry after insufficient_scope");
    assert.ok(!tokenBodies[0]?.includes("scope="));
    assert.equal(provider.tokens()?.scope, "mcp");
  });

  it("lists clients without ever showing a secret", async () => {
    const r = await runCli(["clients", "list", "--config", gw.configFile, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(basicSecret));
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    const basicRow = list.find((c) => c.clientId === basicClient);
    assert.equal(basicRow?.authMethod, "client_secret_basic");
    assert.equal(basicRow?.status, "active");
  });

  it("rejects-replayed-client-assertion: the same assertion (jti) is accepted once only", async () => {
    const once = await assertion(jwtClient);
    const body = {
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: once,
      resource: gw.endpoint("demo"),
      scope: "mcp",
    };
    const first = await tokenRequest(body);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const replay = await tokenRequest(body);
    assert.equal(replay.status, 401);
    assert.equal(replay.json.error, "invalid_client");
  });

  it("rejects-concurrent-assertion-replay: of parallel token requests with one assertion, exactly one gets a token", async () => {
    assertExactlyOneIssued(await raceOneAssertion(gw, jwtClient, key.privateKey));
  });

  it("rejects-assertion-signed-by-another-key", async () => {
    const intruder = ecKeyPair();
    const r = await tokenRequest({
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(jwtClient, intruder.privateKey),
      resource: gw.endpoint("demo"),
    });
    assert.equal(r.status, 401);
    assert.equal(r.json.error, "invalid_client");
  });

  it("rejects-wrong-client-secret with invalid_client 401", async () => {
    const r = await tokenRequest({ resource: gw.endpoint("demo") }, basic(basicClient, `${basicSecret}x`));
    assert.equal(r.status, 401);
    assert.equal(r.json.error, "invalid_client");
    const audit = await runCli(["clients", "list", "--config", gw.configFile, "--json"]);
    assert.ok(!audit.stdout.includes(basicSecret));
  });

  it("requires the resource parameter (RFC 8707) and refuses resources the client was not given", async () => {
    const none = await tokenRequest({}, basic(basicClient, basicSecret));
    assert.equal(none.status, 400);
    assert.equal(none.json.error, "invalid_target");
    const r = await tokenRequest({
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: await assertion(jwtClient),
      resource: gw.endpoint("other"),
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, "invalid_target");
  });

  it("rejects-token-for-other-audience: a token for one server is refused by another", async () => {
    const t = await tokenRequest(
      { resource: gw.endpoint("demo"), scope: "mcp" },
      basic(basicClient, basicSecret),
    );
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.equal((await listTools(t.json.access_token as string, "demo")).status, 200);
    const other = await listTools(t.json.access_token as string, "other");
    assert.equal(other.status, 401);
  });

  it("rejects-client-credentials-for-self-registered-clients (DCR)", async () => {
    const reg = async (metadata: Record<string, unknown>) => {
      const res = await fetch(`${gw.url}/reg`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], ...metadata }),
      });
      return { status: res.status, json: (await res.json()) as Record<string, string> };
    };
    const asking = await reg({
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
    });
    assert.equal(asking.status, 400);
    assert.equal(asking.json.error, "invalid_client_metadata");

    const pub = await reg({ token_endpoint_auth_method: "none" });
    assert.equal(pub.status, 201, JSON.stringify(pub.json));
    const r = await tokenRequest({ client_id: pub.json.client_id as string, resource: gw.endpoint("demo") });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.error, "unauthorized_client", JSON.stringify(r.json));
  });

  it("rejects-revoked-client-cached-token: revocation by the CLI applies from the next request", async () => {
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "short-lived",
      "--auth",
      "client_secret_basic",
    ]);
    const id = created.clientId as string;
    const t = await tokenRequest(
      { resource: gw.endpoint("demo"), scope: "mcp" },
      basic(id, created.clientSecret as string),
    );
    assert.equal(t.status, 200, JSON.stringify(t.json));
    const token = t.json.access_token as string;
    assert.equal((await listTools(token)).status, 200);
    assert.equal((await listTools(token)).status, 200, "second use comes from the verified-token cache");
    const revoked = await gw.cli(["clients", "revoke", id]);
    assert.equal(revoked.status, "revoked");
    const after = await listTools(token);
    assert.equal(after.status, 401);
    const again = await tokenRequest(
      { resource: gw.endpoint("demo") },
      basic(id, created.clientSecret as string),
    );
    assert.equal(again.status, 401);
    assert.equal(again.json.error, "invalid_client");
  });

  it("audits every token endpoint decision with the precise reason, and never logs a secret", async () => {
    const store = await openStore(join(gw.dir, "data", "portcullis.db"));
    try {
      await new Promise((r) => setTimeout(r, 100));
      const records = (await store.listAudit({ limit: 1000 })).filter(
        (a) => a.method === "oauth_client_credentials",
      );
      assert.ok(records.some((a) => a.decision === "allow" && a.credentialId === basicClient));
      assert.ok(
        records.some(
          (a) => a.decision === "deny" && a.credentialId === basicClient && /invalid secret/.test(a.reason),
        ),
      );
      assert.ok(records.some((a) => a.decision === "deny" && /only be used once/.test(a.reason)));
      const operator = (await store.listAudit({ limit: 1000 })).filter((a) => a.method === "cli");
      assert.ok(operator.some((a) => a.credentialId === jwtClient && /created/.test(a.reason)));
      assert.ok(operator.some((a) => /revoked/.test(a.reason)));
      const everything = JSON.stringify(await store.listAudit({ limit: 10_000 }));
      assert.ok(!everything.includes(basicSecret));
    } finally {
      await store.close();
    }
    assert.ok(!JSON.stringify(gw.logs).includes(basicSecret));
    assert.ok(!gw.stderr.join("\n").includes(basicSecret));
  });

  it("prints-no-wrong-token-endpoint-for-port-0: without publicUrl it names <gateway URL>/token instead", async () => {
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "port-zero",
      "--auth",
      "client_secret_basic",
    ]);
    assert.equal(created.tokenEndpoint, null);
    assert.equal(created.issuer, null);
    assert.match(created.note as string, /<gateway URL>\/token/);
    assert.ok(!JSON.stringify(created).includes(":0/"), JSON.stringify(created));
    const human = await runCli(["clients", "show", created.clientId as string, "--config", gw.configFile]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /token endpoint\s+<gateway URL>\/token/);
    assert.ok(!human.stdout.includes(":0/"), human.stdout);
  });

  it("prints-token-endpoint-from-publicUrl (and from a fixed listen port)", async () => {
    const config = parseYaml(readFileSync(gw.configFile, "utf8")) as Record<string, unknown>;
    const withPublicUrl = join(gw.dir, "public-url.yaml");
    writeFileSync(withPublicUrl, stringifyYaml({ ...config, publicUrl: "https://mcp.example.test/" }));
    const created = await runCli([
      "clients",
      "create",
      "--name",
      "behind-proxy",
      "--auth",
      "private_key_jwt",
      "--jwks",
      writeJwks(gw.dir, key.publicKey),
      "--config",
      withPublicUrl,
      "--json",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const view = JSON.parse(created.stdout) as Record<string, unknown>;
    assert.equal(view.tokenEndpoint, "https://mcp.example.test/token");
    assert.equal(view.issuer, "https://mcp.example.test");
    assert.deepEqual(view.resources, [
      "https://mcp.example.test/mcp/demo",
      "https://mcp.example.test/mcp/other",
    ]);
    assert.equal(view.note, undefined);
    const human = await runCli([
      "clients",
      "create",
      "--name",
      "h",
      "--auth",
      "client_secret_basic",
      "--config",
      withPublicUrl,
    ]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^token endpoint\s+https:\/\/mcp\.example\.test\/token$/m);

    const fixedPort = join(gw.dir, "fixed-port.yaml");
    writeFileSync(fixedPort, stringifyYaml({ ...config, listen: { host: "0.0.0.0", port: 8399 } }));
    const shown = await runCli(["clients", "show", view.clientId as string, "--config", fixedPort, "--json"]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      (JSON.parse(shown.stdout) as Record<string, unknown>).tokenEndpoint,
      "http://127.0.0.1:8399/token",
    );
  });

  it("shows one client with `clients show --json`, never its secret", async () => {
    const shown = await gw.cli(["clients", "show", basicClient]);
    assert.equal(shown.clientId, basicClient);
    assert.equal(shown.authMethod, "client_secret_basic");
    assert.equal(shown.status, "active");
    assert.deepEqual(shown.servers, ["demo", "other"]);
    assert.equal(shown.clientSecret, undefined);
    assert.ok(!JSON.stringify(shown).includes(basicSecret));
    const human = await runCli(["clients", "show", basicClient, "--config", gw.configFile]);
    assert.equal(human.code, 0, human.stderr);
    assert.ok(!human.stdout.includes(basicSecret));
    const unknown = await runCli(["clients", "show", "mc_AAAAAAAAAAAAAAAAAAAAAA", "--config", gw.configFile]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no machine client with id/);
  });

  it("names the flag in CLI errors", async () => {
    const r = await runCli([
      "clients",
      "create",
      "--name",
      "x",
      "--auth",
      "private_key_jwt",
      "--config",
      gw.configFile,
      "--json",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--jwks or --public-key/);
    const bad = await runCli([
      "clients",
      "create",
      "--name",
      "x",
      "--auth",
      "magic",
      "--config",
      gw.configFile,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--auth 'magic'/);
  });
});

// Over PostgreSQL each store round trip leaves the lookup-then-record window of oidc-provider's
// replay check wide open; this is where concurrent replays actually raced.
describe("machine clients on a PostgreSQL store", { skip: await postgresSkip() }, () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  const key = ecKeyPair();
  let clientId: string;

  before(async () => {
    db = await createTestDatabase();
    gw = await startGateway({
      config: {
        environment: "dev",
        store: db.url,
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const pem = join(gw.dir, "client-public.pem");
    writeFileSync(pem, key.publicKey.export({ format: "pem", type: "spki" }).toString());
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "racer",
      "--auth",
      "private_key_jwt",
      "--public-key",
      pem,
    ]);
    clientId = created.clientId as string;
  });
  after(async () => {
    await gw?.stop();
    await db?.drop();
  });

  it("rejects-concurrent-assertion-replay: of parallel token requests with one assertion, exactly one gets a token", async () => {
    for (let round = 0; round < 3; round++) {
      assertExactlyOneIssued(await raceOneAssertion(gw, clientId, key.privateKey));
    }
  });
});
