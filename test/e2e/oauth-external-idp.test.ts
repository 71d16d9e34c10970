/**
 * External-IdP mode end to end: a real oidc-provider process is the authorization server;
 * machine clients get tokens for the gateway's resource URL (client_credentials with
 * client_secret_basic and private_key_jwt) and call tools through the gateway with the
 * official v2 SDK client. JWT tokens are checked against the IdP's JWKS, opaque ones by
 * introspection.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { importJWK } from "jose";
import * as oauth from "oauth4webapi";
import { openStore } from "../../src/store/open.js";
import { type HttpUpstream, startHttpUpstream } from "../fixtures/http-upstream.js";
import { IDP_SECRETS, type IdpProcess, startIdpProcess } from "../fixtures/oidc-idp.js";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";
import { textOf } from "../helpers/mcp.js";

const INSECURE = { [oauth.allowInsecureRequests]: true } as const;
const demo = {
  transport: "stdio",
  command: process.execPath,
  args: [DEMO_SERVER],
  oauth: { scopes: ["mcp:tools:read"], tools: { delete_note: ["mcp:tools:destructive"] } },
};

async function authServer(idp: IdpProcess): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(idp.issuer);
  return oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...INSECURE }),
  );
}

async function machineToken(
  idp: IdpProcess,
  resource: string,
  scope: string,
  method: "basic" | "private_key_jwt" = "basic",
): Promise<string> {
  const as = await authServer(idp);
  let client: oauth.Client;
  let auth: oauth.ClientAuth;
  if (method === "basic") {
    client = { client_id: "machine" };
    auth = oauth.ClientSecretBasic(IDP_SECRETS.machine);
  } else {
    const jwk = idp.clients["machine-pkjwt"]?.privateJwk;
    assert.ok(jwk);
    client = { client_id: "machine-pkjwt" };
    auth = oauth.PrivateKeyJwt({ key: (await importJWK(jwk, "ES256")) as CryptoKey, kid: jwk.kid as string });
  }
  const res = await oauth.clientCredentialsGrantRequest(as, client, auth, { resource, scope }, INSECURE);
  return (await oauth.processClientCredentialsResponse(as, client, res)).access_token;
}

describe("OAuth with an external IdP (JWT access tokens)", () => {
  let idp: IdpProcess;
  let gw: RunningGateway;
  let upstream: HttpUpstream;

  before(async () => {
    idp = await startIdpProcess({ profile: "jwt" });
    upstream = await startHttpUpstream();
    gw = await startGateway({
      config: {
        environment: "test",
        oauth: { mode: "external", issuer: idp.issuer },
        servers: { demo, remote: { transport: "http", url: upstream.url, oauth: { scopes: ["mcp:tools"] } } },
      },
    });
  });
  after(async () => {
    await gw.stop();
    await upstream.close();
    await idp.stop();
  });

  it("publishes RFC 9728 protected resource metadata naming the exact resource and the IdP", async () => {
    const res = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp/demo`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.equal(meta.resource, gw.endpoint("demo"));
    assert.deepEqual(meta.authorization_servers, [idp.issuer]);
    assert.deepEqual(meta.scopes_supported, ["mcp:tools:read", "mcp:tools:destructive"]);
    assert.ok(!(meta.scopes_supported as string[]).includes("offline_access"));
  });

  it("challenges a caller without a token with resource_metadata and scope", async () => {
    const call = modern(1, "tools/list");
    const res = await rpc(gw.endpoint("demo"), call.body, call.headers);
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get("www-authenticate"),
      `Bearer resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp/demo", scope="mcp:tools:read"`,
    );
  });

  it("lets a machine client (client_credentials, client_secret_basic) call tools with the v2 SDK", async () => {
    const token = await machineToken(idp, gw.endpoint("demo"), "mcp:tools");
    const client = new ClientV2(
      { name: "machine", version: "1" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } } },
    );
    await client.connect(
      new TransportV2(new URL(gw.endpoint("demo")), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    try {
      const result = await client.callTool({ name: "echo", arguments: { text: "via oauth" } });
      assert.match(textOf(result), /via oauth/);
    } finally {
      await client.close();
    }
    await sleep(300);
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      const row = (await store.listAudit({ limit: 50 })).find(
        (r) => r.tool === "echo" && r.decision === "allow",
      );
      assert.equal(row?.method, "oauth");
      assert.equal(row?.principal, `oauth:${idp.issuer}#machine`);
    } finally {
      await store.close();
    }
  });

  it("accepts a token obtained with private_key_jwt (RFC 7523)", async () => {
    const token = await machineToken(idp, gw.endpoint("demo"), "mcp:tools", "private_key_jwt");
    const call = modern(2, "tools/call", { name: "get_time", arguments: {} }, token);
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 200);
  });

  it("rejects-token-for-other-audience: a token for one server is refused by another", async () => {
    const token = await machineToken(idp, gw.endpoint("remote"), "mcp:tools");
    const call = modern(3, "tools/list", {}, token);
    assert.equal((await rpc(gw.endpoint("remote"), call.body, call.headers)).status, 200);
    const res = await rpc(gw.endpoint("demo"), call.body, call.headers);
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
  });

  it("answers a call needing more scope with 403 insufficient_scope naming every scope needed (step-up)", async () => {
    const narrow = await machineToken(idp, gw.endpoint("demo"), "mcp:tools:read");
    const call = modern(4, "tools/call", { name: "delete_note", arguments: { id: "1" } }, narrow);
    const res = await rpc(gw.endpoint("demo"), call.body, call.headers);
    assert.equal(res.status, 403);
    assert.equal(
      res.headers.get("www-authenticate"),
      `Bearer error="insufficient_scope", scope="mcp:tools:read mcp:tools:destructive", resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp/demo"`,
    );
    const broad = await machineToken(idp, gw.endpoint("demo"), "mcp:tools");
    const stepped = modern(5, "tools/call", { name: "delete_note", arguments: { id: "1" } }, broad);
    const ok = await rpc(gw.endpoint("demo"), stepped.body, stepped.headers);
    assert.equal(ok.status, 200, "the broader 'mcp:tools' scope implies both");
  });

  it("keeps API keys working beside OAuth on the same server", async () => {
    const key = (await gw.cli(["keys", "create", "--name", "beside-oauth"])).key as string;
    const call = modern(6, "tools/list", {}, key);
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 200);
  });

  it("never passes the client's token to the upstream (no token passthrough)", async () => {
    const token = await machineToken(idp, gw.endpoint("remote"), "mcp:tools");
    const call = modern(7, "tools/call", { name: "whoami", arguments: {} }, token);
    const res = await rpc(gw.endpoint("remote"), call.body, call.headers);
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes(token));
    assert.ok(upstream.requests.every((r) => r.headers.authorization === undefined));
  });
});

describe("OAuth with an external IdP (opaque tokens, introspection)", () => {
  let idp: IdpProcess;
  let gw: RunningGateway;

  before(async () => {
    idp = await startIdpProcess({ profile: "opaque" });
    const as = await authServer(idp);
    gw = await startGateway({
      config: {
        environment: "test",
        oauth: {
          mode: "external",
          issuer: idp.issuer,
          introspection: {
            url: as.introspection_endpoint,
            clientId: "gateway",
            clientSecret: { env: "PORTCULLIS_TEST_INTROSPECTION_SECRET" },
            cacheSeconds: 0,
          },
        },
        servers: { demo },
      },
      env: { PORTCULLIS_TEST_INTROSPECTION_SECRET: IDP_SECRETS.gateway },
    });
  });
  after(async () => {
    await gw.stop();
    await idp.stop();
  });

  it("accepts an active opaque token and refuses it once revoked at the IdP", async () => {
    const token = await machineToken(idp, gw.endpoint("demo"), "mcp:tools");
    assert.doesNotMatch(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "opaque, not a JWT");
    const call = modern(1, "tools/list", {}, token);
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 200);
    const as = await authServer(idp);
    const revoke = await oauth.revocationRequest(
      as,
      { client_id: "gateway" },
      oauth.ClientSecretBasic(IDP_SECRETS.gateway),
      token,
      {
        ...INSECURE,
      },
    );
    await oauth.processRevocationResponse(revoke);
    await sleep(1100); // cache entries live at most until the next second with cacheSeconds: 0
    assert.equal((await rpc(gw.endpoint("demo"), call.body, call.headers)).status, 401);
  });
});
