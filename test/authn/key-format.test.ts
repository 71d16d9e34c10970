import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KEY_PATTERN, mintKey, parseKey } from "../../src/authn/keyFormat.js";

describe("API key format", () => {
  it("names the product and the environment and embeds the lookup id", () => {
    const { id, key } = mintKey("prod");
    assert.match(key, /^pcl_prod_/);
    assert.match(key, KEY_PATTERN);
    assert.deepEqual(parseKey(key), { ok: true, environment: "prod", id });
  });

  it("lets a scanner tell a real key from a look-alike offline (checksum)", () => {
    const { key } = mintKey("dev");
    const i = key.length - 10;
    const flipped = key.slice(0, i) + (key[i] === "a" ? "b" : "a") + key.slice(i + 1);
    assert.deepEqual(parseKey(flipped), { ok: false, reason: "bad_checksum" });
  });

  it("rejects strings that are not keys", () => {
    for (const bad of [
      "",
      "pcl_dev_",
      "Bearer x",
      `pcl_DEV_${"a".repeat(12)}_${"b".repeat(38)}`,
      "pcl_dev_short_x",
    ]) {
      assert.deepEqual(parseKey(bad), { ok: false, reason: "malformed" });
    }
  });

  it("never mints the same id twice in a run of 10k keys", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(mintKey("test").id);
    assert.equal(ids.size, 10_000);
  });
});
