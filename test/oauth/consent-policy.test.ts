/**
 * RFC 8252 §8.6: remembered consent is reused only for clients whose identity is assured;
 * a public Client ID Metadata Document client with loopback redirects could be any local
 * program, so its user is asked every time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientIdentityAssured } from "../../src/oauth/consentPolicy.js";

describe("consent reuse (RFC 8252 §8.6)", () => {
  it("asks again when a local program could impersonate a metadata-document client", () => {
    for (const redirect of ["http://127.0.0.1/callback", "http://localhost:3334/cb", "cursor://auth/cb"]) {
      assert.equal(
        clientIdentityAssured({ clientId: "https://agent.example/client.json", redirectUris: [redirect] }),
        false,
        redirect,
      );
    }
  });

  it("asks again when any redirect URI of a metadata-document client is local", () => {
    assert.equal(
      clientIdentityAssured({
        clientId: "https://agent.example/client.json",
        redirectUris: ["https://agent.example/cb", "http://127.0.0.1/cb"],
      }),
      false,
    );
  });

  it("reuses consent for a metadata-document client that redirects only to https on a real host", () => {
    assert.equal(
      clientIdentityAssured({
        clientId: "https://agent.example/client.json",
        redirectUris: ["https://agent.example/cb"],
      }),
      true,
    );
  });

  it("reuses consent for a dynamically registered client (an id issued to one installation)", () => {
    assert.equal(
      clientIdentityAssured({ clientId: "x7Yk2-registered", redirectUris: ["http://127.0.0.1/cb"] }),
      true,
    );
  });
});
