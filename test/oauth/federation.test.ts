/**
 * Login federated to an "enterprise IdP": a real oidc-provider process configured like
 * Entra ID (no resource indicators, no dynamic registration).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FederationError, UpstreamLogin } from "../../src/oauth/federation.js";
import { IDP_SECRETS, type IdpProcess, loginWithForm, startIdpProcess } from "../fixtures/oidc-idp.js";

const REDIRECT = "http://127.0.0.1:48123/oauth/federation/callback";

describe("login federated to an upstream OpenID Connect provider", () => {
  let idp: IdpProcess;
  let login: UpstreamLogin;

  before(async () => {
    idp = await startIdpProcess({ profile: "entra", redirectUris: [REDIRECT] });
    login = await UpstreamLogin.discover({
      issuer: idp.issuer,
      clientId: "portcullis",
      clientSecret: IDP_SECRETS.portcullis,
      redirectUri: REDIRECT,
      scopes: ["openid", "email", "profile", "groups"],
      claims: { userId: "sub", email: "email", groups: "groups" },
      allowInsecure: true,
    });
  });
  after(() => idp.stop());

  it("signs a user in through the upstream with PKCE and maps user id, email and groups", async () => {
    const { url, pending } = await login.begin();
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");
    const callback = await loginWithForm(url, { login: "alice", password: "alice-pw", stopAt: REDIRECT });
    const identity = await login.complete(callback, pending);
    assert.equal(identity.email, "alice@example.test");
    assert.deepEqual(identity.groups, ["admins"]);
    assert.equal(identity.issuer, idp.issuer);
    assert.equal(identity.id, `${idp.issuer}#${identity.subject}`);
  });

  it("refuses a callback whose state belongs to another login attempt (login CSRF)", async () => {
    const first = await login.begin();
    const second = await login.begin();
    const callback = await loginWithForm(first.url, { login: "bob", password: "bob-pw", stopAt: REDIRECT });
    await assert.rejects(login.complete(callback, second.pending), FederationError);
  });

  it("refuses a callback carrying another issuer (mix-up, RFC 9207)", async () => {
    const { url, pending } = await login.begin();
    const callback = await loginWithForm(url, { login: "alice", password: "alice-pw", stopAt: REDIRECT });
    callback.searchParams.set("iss", "https://evil.example.com");
    await assert.rejects(login.complete(callback, pending), FederationError);
  });

  it("refuses to discover a plain-http issuer unless explicitly allowed", async () => {
    await assert.rejects(
      UpstreamLogin.discover({
        issuer: idp.issuer,
        clientId: "portcullis",
        clientSecret: "x",
        redirectUri: REDIRECT,
        scopes: ["openid"],
        claims: { userId: "sub", email: "email", groups: "groups" },
        allowInsecure: false,
      }),
      FederationError,
    );
  });
});
