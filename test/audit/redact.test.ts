/**
 * Arguments in the audit record: secrets never reach the log (secretlint's recommended rules,
 * Portcullis's own key format, secret-looking names), large values are kept as hashes, and
 * the other modes keep what they say.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { createArgumentsRedactor, MASKED } from "../../src/audit/redact.js";
import { canonicalJson } from "../../src/canonicalJson.js";

const GITHUB_TOKEN = `ghp_${"A1b2C3d4E5".repeat(3)}123456`;
const SLACK_TOKEN = "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx";
const PORTCULLIS_KEY = `pcl_prod_a1B2c3D4e5F6_${"Z9y8X7w6V5".repeat(3)}u4t3s2r1`;

describe("audit arguments redaction", () => {
  it("never logs a secret: tokens inside strings are masked, the rest of the string is kept", async () => {
    const r = await createArgumentsRedactor("redacted");
    const [out] = await r.redact([
      {
        command: `curl -H 'Authorization: token ${GITHUB_TOKEN}' https://api.github.com`,
        note: `slack ${SLACK_TOKEN}`,
        nested: { list: [`key=${PORTCULLIS_KEY}`] },
        count: 3,
      },
    ]);
    assert.ok(out);
    for (const secret of [GITHUB_TOKEN, SLACK_TOKEN, PORTCULLIS_KEY]) assert.ok(!out.includes(secret), out);
    const parsed = JSON.parse(out);
    assert.match(parsed.command, /^curl -H 'Authorization: token \[secret\]' https:\/\/api\.github\.com$/);
    assert.equal(parsed.note, `slack ${MASKED}`);
    assert.deepEqual(parsed.nested, { list: [`key=${MASKED}`] });
    assert.equal(parsed.count, 3);
  });

  it("masks values under secret-looking names whatever they look like", async () => {
    const r = await createArgumentsRedactor("redacted");
    const [out] = await r.redact([{ password: "hunter2", apiKey: 1234, path: "/etc/hosts" }]);
    assert.deepEqual(JSON.parse(out as string), { password: MASKED, apiKey: MASKED, path: "/etc/hosts" });
  });

  it("replaces large strings and nested values by their SHA-256", async () => {
    const r = await createArgumentsRedactor("redacted", {
      maxStringLength: 16,
      maxValueBytes: 64,
      maxDepth: 3,
    });
    const long = "y".repeat(100);
    const big = { rows: Array.from({ length: 40 }, (_, i) => i) };
    const [out] = await r.redact([{ long, big, small: { a: 1 }, deep: { a: { b: { c: { d: 1 } } } } }]);
    const parsed = JSON.parse(out as string);
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");
    assert.equal(parsed.long, `[sha256:${sha(long)} 100 characters]`);
    assert.match(parsed.big, new RegExp(`^\\[sha256:${sha(canonicalJson(big))} object, \\d+ bytes\\]$`));
    assert.deepEqual(parsed.small, { a: 1 });
    assert.match(parsed.deep.a.b.c, /^\[sha256:[0-9a-f]{64} object/);
  });

  it("full, hashed and none keep what they say", async () => {
    const args = { path: "/tmp/a", token: GITHUB_TOKEN };
    assert.deepEqual(
      JSON.parse((await (await createArgumentsRedactor("full")).redact([args]))[0] as string),
      args,
    );
    const [hashed] = await (await createArgumentsRedactor("hashed")).redact([args]);
    assert.deepEqual(JSON.parse(hashed as string), {
      sha256: createHash("sha256").update(canonicalJson(args)).digest("hex"),
    });
    assert.deepEqual(await (await createArgumentsRedactor("none")).redact([args]), [null]);
    assert.deepEqual(await (await createArgumentsRedactor("redacted")).redact([undefined]), [null]);
  });

  // That the batch costs one secretlint run is a design property of createSecretScanner (one
  // executeOnContent over the joined texts), not observable here without a mock; this checks
  // what a batch must get right: each secret masked in its own record, none bleeding across.
  it("a batch redacted together masks each secret in its own record, and none across records", async () => {
    const r = await createArgumentsRedactor("redacted");
    const out = await r.redact([
      { a: "plain text here" },
      { b: `t ${GITHUB_TOKEN}` },
      null,
      { c: `s ${SLACK_TOKEN}` },
    ]);
    assert.deepEqual(
      out.map((o) => (o === null ? null : JSON.parse(o))),
      [{ a: "plain text here" }, { b: `t ${MASKED}` }, null, { c: `s ${MASKED}` }],
    );
  });
});
