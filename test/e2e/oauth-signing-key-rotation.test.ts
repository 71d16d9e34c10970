/**
 * Signing-key rotation on a running gateway (`portcullis oauth signing-keys rotate`, run as
 * a separate process like an operator would): the new pair signs from the next token on,
 * tokens signed just before keep working during the overlap, and `--compromised` makes every
 * token signed with a dropped key fail on the very next request (stolen signing key).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeProtectedHeader } from "jose";
import { DEMO_SERVER, modern, type RunningGateway, rpc, startGateway } from "../helpers/gateway.js";

describe("signing-key rotation on a running gateway", () => {
  let gw: RunningGateway;
  let clientId: string;
  let clientSecret: string;

  const token = async (): Promise<string> => {
    const res = await fetch(`${gw.url}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        resource: gw.endpoint("demo"),
        scope: "mcp",
      }),
    });
    const body = (await res.json()) as Record<string, string>;
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.access_token as string;
  };
  const listTools = async (accessToken: string): Promise<number> => {
    const call = modern(1, "tools/list", {}, accessToken);
    return (await rpc(gw.endpoint("demo"), call.body, call.headers)).status;
  };
  const kid = (jwt: string) => decodeProtectedHeader(jwt).kid as string;

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    const created = await gw.cli([
      "clients",
      "create",
      "--name",
      "rotation-probe",
      "--auth",
      "client_secret_basic",
      "--servers",
      "demo",
    ]);
    clientId = created.clientId as string;
    clientSecret = created.clientSecret as string;
  });
  after(async () => {
    await gw.stop();
  });

  it("lists the signing pair without any key material", async () => {
    const list = (await gw.cli(["oauth", "signing-keys", "list"])) as unknown as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(list.map((k) => k.alg).sort(), ["ES256", "RS256"]);
    assert.ok(list.every((k) => k.state === "signing"));
    assert.doesNotMatch(JSON.stringify(list), /"d"|"p"|"q"|jwk/);
  });

  it("signs with the new pair after a rotation and keeps earlier tokens valid during the overlap", async () => {
    const before = await token();
    assert.equal(await listTools(before), 200);
    const rotated = await gw.cli(["oauth", "signing-keys", "rotate"]);
    const created = rotated.created as string[];
    assert.ok((rotated.retired as string[]).includes(kid(before)), "the key in use was retired");

    const after = await token();
    assert.ok(created.includes(kid(after)), `the next token is signed with a new key (${kid(after)})`);
    assert.equal(await listTools(before), 200, "a token signed just before the rotation still works");
    assert.equal(await listTools(after), 200);

    const jwks = (await (await fetch(`${gw.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    const published = jwks.keys.map((k) => k.kid);
    assert.ok(published.includes(kid(before)) && published.includes(kid(after)), "both published");
  });

  it("refuses every token signed with a key dropped as compromised, from the next request (stolen signing key)", async () => {
    const old = await token();
    assert.equal(await listTools(old), 200);
    const rotated = await gw.cli(["oauth", "signing-keys", "rotate", "--compromised"]);
    assert.ok((rotated.retired as string[]).includes(kid(old)));

    assert.equal(await listTools(old), 401, "the token signed with the dropped key is refused");
    const fresh = await token();
    assert.ok((rotated.created as string[]).includes(kid(fresh)));
    assert.equal(await listTools(fresh), 200);
    const jwks = (await (await fetch(`${gw.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    assert.ok(!jwks.keys.some((k) => k.kid === kid(old)), "the dropped key is no longer published");
  });

  it("refuses to rotate when the configuration has no built-in authorization server", async () => {
    const noOauth = await startGateway({
      config: {
        environment: "dev",
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    try {
      await assert.rejects(noOauth.cli(["oauth", "signing-keys", "rotate"]), /oauth\.mode/);
    } finally {
      await noOauth.stop();
    }
  });
});
