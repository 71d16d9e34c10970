/**
 * A stolen copy of the store (issue 10 item 3; RFC 6819 §4.5.3 "Obtaining Refresh Token from
 * Authorization Server Database"): a real gateway on the embedded default issues a refresh
 * token, an authorization code, a dynamically registered client's secret and a browser
 * session. The test then copies the SQLite file (a consistent
 * snapshot), reads every value of `oauth_payloads` from the copy, and presents each one
 * where the real secret would work: as a refresh token and as a code at /token, as the client
 * secret, and as the session cookie (even signed with
 * the gateway's own cookie key). Every attempt is refused; the real values, presented the
 * same way afterwards, are accepted (positive controls).
 */
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { deriveOAuthKey } from "../../src/oauth/secrets.js";
import { CookieJar } from "../fixtures/oidc-idp.js";
import { signInAndConsent } from "../helpers/browserLogin.js";
import { DEMO_SERVER, type RunningGateway, startGateway } from "../helpers/gateway.js";
import { addUser } from "../helpers/oauthUser.js";

const REDIRECT = "http://127.0.0.1:49152/callback";

describe("a copy of the OAuth store yields nothing usable", () => {
  let gw: RunningGateway;
  let user: { username: string; password: string };
  let resource: string;
  const jar = new CookieJar();
  const real = { refreshToken: "", code: "", verifier: "", clientSecret: "", session: "" };
  let publicClient = "";
  let confidentialClient = "";
  let registrationAccessToken: string | undefined;
  let candidates: string[] = [];
  let dump = "";

  const post = async (path: string, form: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${gw.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const register = async (metadata: Record<string, unknown>) => {
    const res = await fetch(`${gw.url}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        application_type: "native",
        redirect_uris: ["http://127.0.0.1/callback"],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        ...metadata,
      }),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as Record<string, string>;
  };
  const authorizeUrl = (clientId: string, verifier: string) => {
    const url = new URL(`${gw.url}/auth`);
    for (const [k, v] of Object.entries({
      client_id: clientId,
      response_type: "code",
      redirect_uri: REDIRECT,
      scope: "mcp",
      resource,
      state: randomBytes(8).toString("hex"),
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    }))
      url.searchParams.set(k, v);
    return url;
  };
  const codeExchange = (code: string, verifier: string) =>
    post("/token", {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      client_id: publicClient,
      code_verifier: verifier,
      resource,
    });
  const refresh = (token: string) =>
    post("/token", { grant_type: "refresh_token", refresh_token: token, client_id: publicClient });
  const basic = (secret: string) => ({
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(confidentialClient)}:${encodeURIComponent(secret)}`).toString("base64")}`,
  });
  const introspectAs = (secret: string) => post("/token/introspection", { token: "x" }, basic(secret));
  /** Opens an authorization request with only this session cookie: which page does it land on? */
  const pageWithSession = async (cookieHeader: string) => {
    let url = authorizeUrl(publicClient, randomBytes(32).toString("base64url"));
    const probe = new CookieJar();
    for (let hop = 0; hop < 5; hop++) {
      const res = await fetch(url, { headers: { cookie: cookieHeader }, redirect: "manual" });
      probe.store(url, res);
      const location = res.headers.get("location");
      if (location === null) return res.text();
      await res.arrayBuffer();
      const next = new URL(location, url);
      // The interaction cookie set on the way is needed to render the interaction page.
      cookieHeader = [cookieHeader, probe.header(next)].filter(Boolean).join("; ");
      url = next;
    }
    return "";
  };
  /** The session cookie pair a browser would send, signed with the gateway's cookie key. */
  const signedSessionCookie = (value: string) => {
    const secret = Buffer.from(
      readFileSync(join(gw.dir, "data", "server-secret"), "utf8").trim(),
      "base64url",
    );
    const key = deriveOAuthKey(secret, "cookie-signing").toString("base64url");
    const sig = createHmac("sha1", key)
      .update(`oauth_session=${value}`)
      .digest("base64")
      .replace(/[/+=]/g, (c) => ({ "/": "_", "+": "-", "=": "" })[c] ?? "");
    return `oauth_session=${value}; oauth_session.sig=${sig}`;
  };

  before(async () => {
    gw = await startGateway({
      config: {
        environment: "dev",
        oauth: { mode: "builtin" },
        servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      },
    });
    resource = gw.endpoint("demo");
    user = await addUser(gw, "carol");
    publicClient = (await register({ token_endpoint_auth_method: "none" })).client_id as string;
    const confidential = await register({ token_endpoint_auth_method: "client_secret_basic" });
    confidentialClient = confidential.client_id as string;
    real.clientSecret = confidential.client_secret as string;
    assert.ok(real.clientSecret, JSON.stringify(confidential));
    registrationAccessToken = confidential.registration_access_token;

    // A refresh token from a full flow, and a second code left unredeemed.
    const firstVerifier = randomBytes(32).toString("base64url");
    const first = await signInAndConsent(authorizeUrl(publicClient, firstVerifier), {
      user,
      jar,
      stopAt: (u) => u.href.startsWith(REDIRECT),
    });
    const tokens = await codeExchange(first.searchParams.get("code") ?? "", firstVerifier);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    real.refreshToken = String(tokens.body.refresh_token);
    real.verifier = randomBytes(32).toString("base64url");
    const second = await signInAndConsent(authorizeUrl(publicClient, real.verifier), {
      user,
      jar,
      stopAt: (u) => u.href.startsWith(REDIRECT),
    });
    real.code = second.searchParams.get("code") ?? "";
    real.session = /(?:^|; )oauth_session=([^;]+)/.exec(jar.header(new URL(`${gw.url}/auth`)))?.[1] ?? "";
    assert.ok(real.code && real.session);

    // The copy: a consistent snapshot of the live file (VACUUM INTO, one read transaction;
    // the online backup API restarts whenever the gateway writes), then read on its own.
    const live = new Database(join(gw.dir, "data", "portcullis.db"), { readonly: true, fileMustExist: true });
    const copyPath = join(gw.dir, "stolen-copy.db");
    live.prepare("VACUUM INTO ?").run(copyPath);
    live.close();
    const copy = new Database(copyPath, { readonly: true });
    const rows = copy.prepare("SELECT * FROM oauth_payloads").all() as Record<string, unknown>[];
    copy.close();
    assert.ok(rows.length >= 6, `the flows left artefacts (${rows.length} rows)`);
    dump = JSON.stringify(rows);
    const values = new Set<string>();
    for (const row of rows) {
      for (const v of Object.values(row)) {
        if (typeof v !== "string" || v === "") continue;
        values.add(v);
        // Every token-like run inside a value (JSON fields, sealed-value parts).
        for (const m of v.matchAll(/[A-Za-z0-9_-]{16,}/g)) values.add(m[0]);
      }
    }
    candidates = [...values];
  });

  after(() => gw?.stop());

  it("stores none of the secrets it handed out, in any column", () => {
    for (const [name, value] of Object.entries(real)) {
      if (name === "verifier") continue; // the client's, never sent to the store
      assert.ok(!dump.includes(value), `${name} is in the store`);
    }
  });

  it("redeems no stored value as a refresh token or an authorization code", async () => {
    for (const candidate of candidates) {
      const asRefresh = await refresh(candidate);
      assert.equal(asRefresh.status, 400, `refresh_token ${candidate}`);
      assert.equal(asRefresh.body.error, "invalid_grant");
      const asCode = await codeExchange(candidate, real.verifier);
      assert.equal(asCode.status, 400, `code ${candidate}`);
      assert.equal(asCode.body.error, "invalid_grant");
    }
    // Positive controls: the real ones work.
    assert.equal((await codeExchange(real.code, real.verifier)).status, 200);
    assert.equal((await refresh(real.refreshToken)).status, 200);
  });

  it("issues no registration access token (RFC 7592 management is not served: a bearer secret for nothing)", () => {
    assert.equal(registrationAccessToken, undefined);
  });

  it("authenticates no client with a stored value as its secret", async () => {
    for (const candidate of candidates) {
      assert.equal((await introspectAs(candidate)).status, 401, `client_secret ${candidate}`);
    }
    assert.equal((await introspectAs(real.clientSecret)).status, 200);
  });

  it("resumes no browser session from a stored value, even with a validly signed cookie", async () => {
    for (const candidate of candidates) {
      const page = await pageWithSession(signedSessionCookie(candidate));
      assert.match(page, /<h1>Sign in<\/h1>/, `session ${candidate}`);
    }
    // Positive control: the user's own session skips the sign-in (consent is asked: a DCR client).
    const page = await pageWithSession(signedSessionCookie(real.session));
    assert.match(page, /<h1>Authorize access<\/h1>/);
    // And the browser's real cookie pair is exactly what the probe builds.
    assert.ok(jar.header(new URL(`${gw.url}/auth`)).includes(signedSessionCookie(real.session)));
  });
});
