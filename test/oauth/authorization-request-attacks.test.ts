/**
 * Authorization requests an attacker shapes: no PKCE or `plain` PKCE (code interception,
 * OAuth 2.1 §4.1.1 / RFC 7636 §4.2), a redirect_uri that is not an exact registered match
 * (open redirect / code theft, OAuth 2.1 §4.1.3), a wrong code_verifier, and framing of the
 * sign-in and consent pages (clickjacking, RFC 6819 §4.4.1.9).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CookieJar } from "../fixtures/oidc-idp.js";
import {
  authorizationUrl,
  authorize,
  browse,
  type Harness,
  pkce,
  REDIRECT_WITH_PORT,
  registerClient,
  startHarness,
  tokenRequest,
  USER,
} from "./asHarness.js";

describe("authorization request attacks", () => {
  let h: Harness;
  let clientId: string;
  before(async () => {
    h = await startHarness();
    clientId = await registerClient(h);
  });
  after(() => h.close());

  it("refuses a request without PKCE (code interception)", async () => {
    const back = await authorize(authorizationUrl(h, clientId, null));
    assert.equal(back.searchParams.get("error"), "invalid_request");
    assert.equal(back.searchParams.get("iss"), h.issuer);
  });

  it("refuses plain PKCE (code_challenge_method=plain)", async () => {
    const p = pkce();
    const back = await authorize(
      authorizationUrl(h, clientId, null, { code_challenge: p.verifier, code_challenge_method: "plain" }),
    );
    assert.equal(back.searchParams.get("error"), "invalid_request");
    assert.equal(back.searchParams.get("iss"), h.issuer);
  });

  it("refuses a code exchanged with the wrong code_verifier (stolen code)", async () => {
    const back = await authorize(authorizationUrl(h, clientId, pkce()));
    const res = await tokenRequest(h, {
      grant_type: "authorization_code",
      code: String(back.searchParams.get("code")),
      redirect_uri: REDIRECT_WITH_PORT,
      client_id: clientId,
      code_verifier: pkce().verifier,
      resource: h.resources[0],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, "invalid_grant");
  });

  for (const redirect of [
    "http://127.0.0.1:49152/callback/extra",
    "http://127.0.0.1:49152/callbackx",
    "http://evil.example/callback",
    "http://localhost:49152/callback",
    "http://127.0.0.1:49152/callback?x=1",
  ]) {
    it(`refuses a redirect_uri that is not an exact registered match (open redirect): ${redirect}`, async () => {
      const res = await fetch(authorizationUrl(h, clientId, pkce(), { redirect_uri: redirect }), {
        redirect: "manual",
      });
      // Never redirect to an unregistered URI: the error is shown, not sent.
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("location"), null);
      assert.match(await res.text(), /redirect_uri/);
    });
  }

  it("serves the sign-in and consent pages unframeable, script-free and with a CSRF token", async () => {
    const jar = new CookieJar();
    // A client this user has not consented to yet, so the consent page is shown.
    const fresh = await registerClient(h);
    let res = await browse(jar, authorizationUrl(h, fresh, pkce()));
    const interaction = new URL(String(res.headers.get("location")), h.issuer);
    res = await browse(jar, interaction);
    const check = (r: Response, html: string) => {
      // The one inline stylesheet is allowed by its hash; nothing else (no script, no external asset).
      assert.match(
        r.headers.get("content-security-policy") ?? "",
        /^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/,
      );
      assert.doesNotMatch(html, /<link |src=/i);
      assert.equal(r.headers.get("x-frame-options"), "DENY");
      assert.equal(r.headers.get("cache-control"), "no-store");
      assert.doesNotMatch(html, /<script/i);
      assert.match(html, /name="csrf"/);
    };
    const login = await res.text();
    check(res, login);
    const csrf = /name="csrf" value="([^"]+)"/.exec(login)?.[1] ?? "";

    // A cross-site form post without the interaction's CSRF token is refused.
    const forged = await browse(jar, new URL(`${interaction.pathname}/login`, h.issuer), {
      username: USER.username,
      password: USER.password,
    });
    assert.equal(forged.status, 403);

    res = await browse(jar, new URL(`${interaction.pathname}/login`, h.issuer), {
      csrf,
      username: USER.username,
      password: USER.password,
    });
    for (let i = 0; i < 5 && res.status >= 300 && res.status < 400; i++) {
      res = await browse(jar, new URL(String(res.headers.get("location")), h.issuer));
    }
    const consent = await res.text();
    check(res, consent);
    assert.match(consent, /Test Agent/);
    assert.match(consent, /127\.0\.0\.1:49152/);
    assert.match(consent, /on your own computer/);
    // What the grant unlocks (mcp:tools covers the server and delete_repo's own scope).
    assert.match(consent, /unlocks every tool without a scope of its own and <code>delete_repo<\/code>/);
    assert.match(consent, /mcp:tools/);
    assert.ok(consent.includes(h.resources[0]));
  });

  /**
   * One failed sign-in as a browser makes it: the interaction's login form, posted with its
   * csrf token. The answer with the per-interaction parts (its id, the csrf token) and the
   * user's own typing masked.
   */
  async function failedSignIn(username: string, password: string) {
    const jar = new CookieJar();
    const start = await browse(jar, authorizationUrl(h, clientId, pkce()));
    const interaction = new URL(String(start.headers.get("location")), h.issuer);
    const page = await (await browse(jar, interaction)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";
    const res = await browse(jar, new URL(`${interaction.pathname}/login`, h.issuer), {
      csrf,
      username,
      password,
    });
    const uid = interaction.pathname.split("/").filter(Boolean).at(-1) ?? "";
    const body = (await res.text())
      .replaceAll(uid, "<interaction>")
      .replace(/name="csrf" value="[^"]+"/g, 'name="csrf" value="<csrf>"')
      // The form keeps what the user typed, which tells them nothing they did not know.
      .replaceAll(`value="${username}"`, 'value="<typed username>"');
    return {
      status: res.status,
      location: res.headers.get("location"),
      contentType: res.headers.get("content-type"),
      body,
    };
  }

  it("refuses a wrong password without saying which part was wrong", async () => {
    const wrongPassword = await failedSignIn(USER.username, "wrong");
    const unknownUser = await failedSignIn("mallory", "wrong");
    const unknownWithRealPassword = await failedSignIn("mallory", USER.password);
    assert.equal(wrongPassword.status, 401, wrongPassword.body.slice(0, 300));
    // Byte for byte the same answer (once the interaction's id, token and the typing are masked).
    assert.deepEqual(unknownUser, wrongPassword);
    assert.deepEqual(unknownWithRealPassword, wrongPassword);
    assert.doesNotMatch(wrongPassword.body, /unknown user|no such user|wrong password|locked/i);
  });
});
