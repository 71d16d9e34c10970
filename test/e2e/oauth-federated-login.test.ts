/**
 * Sign-in at the built-in authorization server delegated to an "enterprise IdP": a real
 * oidc-provider process configured like Entra ID (no resource indicators, no registration).
 * An official SDK v1 client given only the server URL registers itself, the browser (an HTTP
 * client with a cookie jar) is sent to the IdP, signs in there, comes back through
 * /oauth/callback, consents at the gateway, and the client calls a tool as the federated user.
 * Then the attacks on the callback: login CSRF, replay, issuer mix-up (RFC 9207); and startup
 * refusals of bad upstream configuration.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import { openStore } from "../../src/store/open.js";
import { CookieJar, IDP_SECRETS, type IdpProcess, startIdpProcess } from "../fixtures/oidc-idp.js";
import { auditRecords } from "../helpers/audit.js";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { SDK_REDIRECT, SdkClientState } from "../helpers/sdkOAuthClient.js";
import { waitFor } from "../helpers/wait.js";
import { browse } from "../oauth/asHarness.js";

const REDIRECT = SDK_REDIRECT;
const IDP_NAME = "Enterprise IdP";

interface Browser {
  jar: CookieJar;
  login: string;
  password: string;
}

/**
 * Follows redirects like a browser: signs in at the IdP's form, consents at the gateway, and
 * returns the first redirect target for which `stop` is true (without requesting it).
 */
async function drive(
  start: URL,
  browser: Browser,
  idp: IdpProcess,
  stop: (url: URL) => boolean,
): Promise<URL> {
  let url = start;
  let form: Record<string, string> | undefined;
  for (let hop = 0; hop < 25; hop++) {
    const res = await browse(browser.jar, url, form);
    form = undefined;
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.arrayBuffer();
      url = new URL(location, url);
      if (stop(url)) return url;
      continue;
    }
    const html = await res.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    if (res.status !== 200 || action === undefined) {
      throw new Error(`unexpected ${res.status} at ${url.href}: ${html.slice(0, 400)}`);
    }
    const target = new URL(
      action.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))),
      url,
    );
    if (url.origin === new URL(idp.issuer).origin) {
      form = { login: browser.login, password: browser.password };
    } else {
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      assert.ok(csrf, `a gateway form without CSRF token at ${url.href}`);
      assert.ok(target.pathname.endsWith("/confirm"), `expected the consent form, got ${target.pathname}`);
      form = { csrf, decision: "allow" };
    }
    url = target;
  }
  throw new Error("too many hops");
}

describe("built-in OAuth with sign-in federated to an enterprise IdP", () => {
  let idp: IdpProcess;
  let gw: RunningGateway;
  const alice = () => ({ jar: new CookieJar(), login: "alice", password: "alice-pw" });
  const bob = () => ({ jar: new CookieJar(), login: "bob", password: "bob-pw" });

  const upstreamConfig = (issuer: string, extra: Record<string, unknown> = {}) => ({
    name: IDP_NAME,
    issuer,
    clientId: "portcullis",
    clientSecret: { env: "PORTCULLIS_TEST_IDP_SECRET" },
    scopes: ["openid", "email", "profile", "groups"],
    allowInsecureHttp: true,
    ...extra,
  });
  const gatewayConfig = (upstream: Record<string, unknown>, environment = "dev") => ({
    environment,
    oauth: { mode: "builtin", login: { upstream } },
    servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
  });
  const env = { PORTCULLIS_TEST_IDP_SECRET: IDP_SECRETS.portcullis };

  /** An SDK client's first connect: it registers itself and is sent to the authorization URL. */
  async function authorizationRequest(): Promise<{
    provider: SdkClientState;
    transport: StreamableHTTPClientTransport;
  }> {
    const provider = new SdkClientState("Portcullis federated e2e client");
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      authProvider: provider,
    });
    await assert.rejects(new Client({ name: "e2e", version: "1" }).connect(transport), UnauthorizedError);
    assert.ok(provider.authorizationUrl, "the client was sent to sign in");
    return { provider, transport };
  }
  const atCallback = (url: URL) => url.href.startsWith(`${gw.url}/oauth/callback`);

  before(async () => {
    idp = await startIdpProcess({ profile: "entra" });
    gw = await startGateway({ config: gatewayConfig(upstreamConfig(idp.issuer)), env });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it("lets an SDK v1 client with only the server URL connect as the IdP's user, email and groups in the token", async () => {
    const { provider, transport } = await authorizationRequest();
    const browser = alice();
    const callback = await drive(provider.authorizationUrl as URL, browser, idp, (u) =>
      u.href.startsWith(REDIRECT),
    );
    assert.equal(callback.searchParams.get("iss"), gw.url);
    await transport.finishAuth(callback.searchParams.get("code") as string);
    const token = provider.saved?.access_token;
    assert.ok(token);
    const claims = decodeJwt(token);
    assert.equal(claims.email, "alice@example.test");
    assert.deepEqual(claims.groups, ["admins"]);
    assert.match(String(claims.sub), /^fed:[A-Za-z0-9_-]{16}#a11ce000-0000-4000-8000-000000000001$/);

    const client = new Client({ name: "e2e", version: "1" });
    const t = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), { authProvider: provider });
    await client.connect(t);
    try {
      const result = await client.callTool({ name: "echo", arguments: { text: "federated" } });
      assert.match(JSON.stringify(result), /federated/);
    } finally {
      await t.terminateSession().catch(() => {});
      await client.close();
    }
    await sleep(300);
    const store = await openStore(`${gw.dir}/data/portcullis.db`);
    try {
      const row = (await store.listAudit({ limit: 100 })).find(
        (r) => r.tool === "echo" && r.decision === "allow",
      );
      assert.equal(row?.method, "oauth");
      assert.equal(row?.principal, `oauth:${gw.url}#${String(claims.sub)}`);
    } finally {
      await store.close();
    }
    // The sign-in itself is in the audit trail: who, through which IdP, to which client.
    const [signedIn] = await waitFor("the federated sign-in record", async () => {
      const found = (await auditRecords(gw, { method: "sign_in" })).filter(
        (r) =>
          r.detail?.event === "sign_in.succeeded" && r.principal === `oauth:${gw.url}#${String(claims.sub)}`,
      );
      return found.length > 0 ? found : undefined;
    });
    assert.equal(signedIn?.detail?.amr, "fed");
    assert.equal(signedIn?.detail?.upstream, idp.issuer);
    assert.equal(signedIn?.detail?.clientName, "Portcullis federated e2e client");
  });

  it("goes straight to the IdP when local sign-in is off, and refuses a local password sign-in", async () => {
    const { provider } = await authorizationRequest();
    const jar = new CookieJar();
    const interaction = await drive(provider.authorizationUrl as URL, { ...alice(), jar }, idp, (u) =>
      u.pathname.startsWith("/oauth/interaction/"),
    );
    const res = await browse(jar, interaction);
    await res.arrayBuffer();
    assert.equal(res.status, 303);
    assert.ok(res.headers.get("location")?.startsWith(`${idp.issuer}/auth?`));
    const login = await browse(jar, new URL(`${interaction.href}/login`), {
      csrf: "x",
      username: "admin",
      password: "whatever-password",
    });
    assert.equal(login.status, 403);
    assert.match(await login.text(), /Password sign-in is not available/);
  });

  it("refuses a callback whose state was issued to another browser (login CSRF)", async () => {
    // The attacker signs in as bob and keeps the IdP's answer instead of following it.
    const attacker = bob();
    const stolen = await drive(
      (await authorizationRequest()).provider.authorizationUrl as URL,
      attacker,
      idp,
      atCallback,
    );
    // The victim has a sign-in of its own under way, then is made to load the attacker's answer.
    const victim = alice();
    await drive((await authorizationRequest()).provider.authorizationUrl as URL, victim, idp, atCallback);
    const planted = await browse(victim.jar, stolen);
    assert.equal(planted.status, 403);
    assert.match(await planted.text(), /not started in this browser/);
    // A browser with no sign-in at all is refused the same way.
    const fresh = await browse(new CookieJar(), stolen);
    assert.equal(fresh.status, 403);
    await fresh.arrayBuffer();
    // A state the gateway never issued names no sign-in.
    const forged = new URL(stolen);
    forged.searchParams.set("state", "forged-state-value");
    const unknown = await browse(attacker.jar, forged);
    assert.equal(unknown.status, 400);
    await unknown.arrayBuffer();
    // Each refusal is an audit record with its precise reason.
    await waitFor("the login CSRF refusals in the audit trail", async () => {
      const reasons = (await auditRecords(gw, { method: "sign_in", decision: "deny" })).map((r) => r.reason);
      return (
        reasons.filter((r) => /login CSRF/.test(r)).length >= 2 &&
        reasons.some((r) => /names no pending login/.test(r))
      );
    });
    // The refusals did not burn the attacker's own answer: it still works in the attacker's browser.
    const own = await browse(attacker.jar, stolen);
    await own.arrayBuffer();
    assert.equal(own.status, 303);
    assert.match(own.headers.get("location") ?? "", /\/auth\//);
  });

  it("refuses a callback replayed a second time", async () => {
    const browser = alice();
    const callback = await drive(
      (await authorizationRequest()).provider.authorizationUrl as URL,
      browser,
      idp,
      atCallback,
    );
    const first = await browse(browser.jar, callback);
    await first.arrayBuffer();
    assert.equal(first.status, 303);
    const replay = await browse(browser.jar, callback);
    assert.equal(replay.status, 400);
    assert.match(await replay.text(), /already used/);
  });

  it("refuses an IdP answer that names another issuer (mix-up, RFC 9207)", async () => {
    const browser = alice();
    const callback = await drive(
      (await authorizationRequest()).provider.authorizationUrl as URL,
      browser,
      idp,
      atCallback,
    );
    assert.equal(callback.searchParams.get("iss"), idp.issuer);
    callback.searchParams.set("iss", "https://attacker-idp.example.com");
    const res = await browse(browser.jar, callback);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /not accepted/);
    // The gateway's log reaches the test through a pipe: wait for the line rather than race it.
    const logged = () =>
      gw.logs.some((l) => l.event === "oauth.upstream_login_refused" && /iss/i.test(String(l.reason)));
    for (let i = 0; i < 40 && !logged(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(logged(), "the precise reason is logged");
  });

  it("refuses at startup an http issuer outside the dev environment, naming the field", async () => {
    await assert.rejects(
      startGateway({ config: gatewayConfig(upstreamConfig(idp.issuer), "prod"), env }),
      /oauth\.login\.upstream\.allowInsecureHttp: allowed only in the dev environment/,
    );
    await assert.rejects(
      startGateway({
        config: gatewayConfig(upstreamConfig(idp.issuer, { allowInsecureHttp: false }), "prod"),
        env,
      }),
      /oauth\.login\.upstream\.issuer: must be an https URL/,
    );
  });

  it("refuses at startup an issuer whose discovery fails, naming the field", async () => {
    await assert.rejects(
      startGateway({ config: gatewayConfig(upstreamConfig(`${idp.issuer}/no-such-tenant`)), env }),
      /login\.upstream\.issuer: cannot discover/,
    );
  });

  it("refuses unknown keys in the upstream block", async () => {
    await assert.rejects(
      startGateway({ config: gatewayConfig(upstreamConfig(idp.issuer, { clientSecert: "x" })), env }),
      /oauth\.login\.upstream: unknown key\(s\) 'clientSecert'/,
    );
  });
});

describe("built-in OAuth offering both local and federated sign-in", () => {
  let idp: IdpProcess;
  let gw: RunningGateway;

  before(async () => {
    idp = await startIdpProcess({ profile: "entra" });
    gw = await startGateway({
      config: {
        oauth: {
          mode: "builtin",
          login: {
            localUsers: true,
            upstream: {
              name: IDP_NAME,
              issuer: idp.issuer,
              clientId: "portcullis",
              clientSecret: { env: "PORTCULLIS_TEST_IDP_SECRET" },
              allowInsecureHttp: true,
            },
          },
        },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
      env: { PORTCULLIS_TEST_IDP_SECRET: IDP_SECRETS.portcullis },
    });
  });
  after(async () => {
    await gw?.stop();
    await idp?.stop();
  });

  it("shows the password form and a 'Sign in with' link that leads to the IdP", async () => {
    const provider = new SdkClientState("Portcullis federated e2e client");
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      authProvider: provider,
    });
    await assert.rejects(new Client({ name: "e2e", version: "1" }).connect(transport), UnauthorizedError);
    const jar = new CookieJar();
    const first = await browse(jar, provider.authorizationUrl as URL);
    await first.arrayBuffer();
    const page = new URL(first.headers.get("location") as string, gw.url);
    const res = await browse(jar, page);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /name="password"/);
    const link = /<a class="button" href="([^"]+)">Sign in with Enterprise IdP<\/a>/.exec(html)?.[1];
    assert.ok(link, html);
    const go = await browse(jar, new URL(link, gw.url));
    await go.arrayBuffer();
    assert.equal(go.status, 303);
    assert.ok(go.headers.get("location")?.startsWith(`${idp.issuer}/auth?`));
    assert.match(
      go.headers.get("set-cookie") ?? "",
      /oauth_upstream=[^;]+; Path=\/oauth\/callback;.*HttpOnly; SameSite=Lax/,
    );
  });
});
