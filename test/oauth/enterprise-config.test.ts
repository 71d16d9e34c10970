/**
 * `oauth.enterprise` (enterprise-managed authorization, ID-JAG) in the config: strict keys,
 * errors that name the field, https IdPs outside the dev environment, machine client ids.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseConfig } from "../../src/config/load.js";

const withEnterprise = (enterprise: unknown, environment = "prod") => ({
  environment,
  oauth: { mode: "builtin", enterprise },
});

describe("oauth.enterprise config", () => {
  it("accepts IdPs with defaults (algorithms, lifetime)", () => {
    const config = parseConfig(
      withEnterprise({
        idps: [{ issuer: "https://idp.example.com", clients: ["mc_AAAAAAAAAAAAAAAAAAAAAA"] }],
      }),
      "test",
    );
    assert.equal(config.oauth?.mode, "builtin");
    const enterprise = config.oauth?.mode === "builtin" ? config.oauth.enterprise : undefined;
    assert.deepEqual(enterprise?.idps[0]?.algorithms, ["RS256", "PS256", "ES256", "EdDSA"]);
    assert.equal(enterprise?.maxAssertionLifetimeSeconds, 600);
  });

  it("names the field of an unknown key, a non-machine client id and a duplicate issuer", () => {
    assert.throws(
      () =>
        parseConfig(withEnterprise({ idps: [{ issuer: "https://idp.example.com", audience: "x" }] }), "test"),
      (err: Error) => err instanceof ConfigError && /oauth\.enterprise\.idps\.0/.test(err.message),
    );
    assert.throws(
      () =>
        parseConfig(
          withEnterprise({ idps: [{ issuer: "https://idp.example.com", clients: ["chat-app"] }] }),
          "test",
        ),
      (err: Error) => err instanceof ConfigError && /clients/.test(err.message) && /mc_/.test(err.message),
    );
    assert.throws(
      () =>
        parseConfig(
          withEnterprise({
            idps: [{ issuer: "https://idp.example.com" }, { issuer: "https://idp.example.com" }],
          }),
          "test",
        ),
      (err: Error) => err instanceof ConfigError && /each issuer may be listed once/.test(err.message),
    );
  });

  it("refuses a plain-http IdP outside the dev environment, allows it in dev", () => {
    assert.throws(
      () => parseConfig(withEnterprise({ idps: [{ issuer: "http://127.0.0.1:9000" }] }), "test"),
      (err: Error) =>
        err instanceof ConfigError &&
        /oauth\.enterprise\.idps\.0\.issuer: must be an https URL/.test(err.message),
    );
    assert.doesNotThrow(() =>
      parseConfig(withEnterprise({ idps: [{ issuer: "http://127.0.0.1:9000" }] }, "dev"), "test"),
    );
  });
});
