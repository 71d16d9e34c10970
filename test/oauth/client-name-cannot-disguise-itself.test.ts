/**
 * The name the sign-in and consent pages show for a client (src/oauth/clientDisplayName.ts):
 * its registered client_name, cleaned of characters that could disguise it (a right-to-left
 * override (U+202E) reversing the rest of a name, zero-width joiners, newlines) and cut
 * to a sane length; else the host its answer goes to; never its client id.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clientDisplayName, redirectTarget } from "../../src/oauth/clientDisplayName.js";
import type { OidcClient } from "../../src/oauth/oidcProvider.js";

const client = (clientName: string | undefined, redirectUris: string[] = []): OidcClient => ({
  clientId: "0f6d2c1e-6a51-4d7a-9f8e-2b7c1a9e4d33",
  ...(clientName === undefined ? {} : { clientName }),
  redirectUris,
  grantTypeAllowed: () => true,
});

describe("client display names", () => {
  it("shows the registered name", () => {
    assert.equal(clientDisplayName(client("Acme Notes")), "Acme Notes");
  });

  it("strips bidi overrides, zero-width and control characters that could disguise a name", () => {
    assert.equal(clientDisplayName(client("Acme\u202Egnp.exe")), "Acmegnp.exe");
    assert.equal(clientDisplayName(client("Cl\u200Baude\n")), "Claude");
  });

  it("cuts a name longer than 80 characters", () => {
    const shown = clientDisplayName(client("A".repeat(500)));
    assert.equal(shown.length, 80);
    assert.ok(shown.endsWith("…"));
  });

  it("falls back to the host of the redirect URI, never the client id", () => {
    assert.equal(clientDisplayName(client(undefined), "http://127.0.0.1:49152/callback"), "127.0.0.1:49152");
    assert.equal(clientDisplayName(client("   ", ["https://app.example.com/cb"])), "app.example.com");
    assert.equal(clientDisplayName(client(undefined, ["com.example.app:/callback"])), "com.example.app");
    assert.equal(clientDisplayName(undefined), "an application");
    assert.equal(redirectTarget("not a url"), null);
  });
});
