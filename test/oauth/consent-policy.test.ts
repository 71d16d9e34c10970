/**
 * RFC 8252 §8.6: remembered consent is reused only for clients whose identity is assured
 * (operator-registered clients, and metadata-document clients whose redirect URIs are https
 * on their own origin); every other client, and any dynamically registered one, is asked
 * every time.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientIdentityAssured } from "../../src/oauth/consentPolicy.js";

const none = () => false;

describe("consent reuse (RFC 8252 §8.6)", () => {
  it("asks again when a local program could impersonate a metadata-document client", () => {
    for (const redirect of ["http://127.0.0.1/callback", "http://localhost:3334/cb", "cursor://auth/cb"]) {
      assert.equal(
        clientIdentityAssured(
          { clientId: "https://agent.example/client.json", redirectUris: [redirect] },
          none,
        ),
        false,
        redirect,
      );
    }
  });

  it("asks again when any redirect URI of a metadata-document client is local or on another origin", () => {
    for (const other of ["http://127.0.0.1/cb", "https://elsewhere.example/cb", "http://agent.example/cb"]) {
      assert.equal(
        clientIdentityAssured(
          {
            clientId: "https://agent.example/client.json",
            redirectUris: ["https://agent.example/cb", other],
          },
          none,
        ),
        false,
        other,
      );
    }
  });

  it("reuses consent for a metadata-document client that redirects only to https on its own origin", () => {
    assert.equal(
      clientIdentityAssured(
        { clientId: "https://agent.example/client.json", redirectUris: ["https://agent.example/cb"] },
        none,
      ),
      true,
    );
  });

  it("asks a dynamically registered client every time, whatever its redirect URIs (public client_id)", () => {
    for (const redirect of ["http://127.0.0.1/cb", "https://client.example/cb", "cursor://auth/cb"]) {
      assert.equal(
        clientIdentityAssured({ clientId: "x7Yk2-registered", redirectUris: [redirect] }, none),
        false,
      );
    }
  });

  it("reuses consent for a client the operator registered", () => {
    assert.equal(
      clientIdentityAssured(
        { clientId: "portcullis-console", redirectUris: ["https://gw.example/console/callback"] },
        (id) => id === "portcullis-console",
      ),
      true,
    );
  });
});
