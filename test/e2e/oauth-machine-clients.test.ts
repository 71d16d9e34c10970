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
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  ClientCredentialsProvider,
  Client as ClientV2,
  PrivateKeyJwtProvider,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { SignJWT } from "jose";
import { openStore } from "../../src/store/open.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, runCli, startGateway } from "../helpers/gateway.js";

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function ecKeyPair(): { publicKey: KeyObject; privateKey: KeyObject; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    publicKey,
    privateKey,
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
  };
}

function text(result: unknown): string {
  const first = (result as CallToolResult).content[0];
  assert.ok(first && first.type === "text", JSON.stringify(result));
  return first.text;
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
    assert.match(created.tokenEndpoint as string, /\/token$/);
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
      assert.ok(text(r).includes("from a machine"));
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
      assert.ok(text(r).includes("basic works"));
    } finally {
      await client.close();
    }
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
