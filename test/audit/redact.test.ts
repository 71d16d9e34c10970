/**
 * Arguments in the audit record: secrets never reach the log (secretlint's recommended rules,
 * Portcullis's own key format, secret-looking names), large values are kept as hashes, and
 * the other modes keep what they say.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { createArgumentsRedactor, MASKED } from "../../src/audit/redact.js";
import { canonicalJson, canonicalJsonUnbounded } from "../../src/core/canonicalJson.js";

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

  it("secrets pasted into free text never reach the log: bearer JWTs, AWS key ids, -pPASSWORD, password: X", async () => {
    const r = await createArgumentsRedactor("redacted");
    const jwt = [
      Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url"),
      Buffer.from('{"sub":"alice","scope":"admin"}').toString("base64url"),
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ].join(".");
    const awsKeyId = "AKIAZ5XQ7L3M2N4P6R8T";
    const [out] = await r.redact([
      {
        command: `curl -H "Authorization: Bearer ${jwt}" https://api.example.com`,
        token_in_prose: `use ${jwt} for the next call`,
        opaque: "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543",
        aws: `export AWS_ACCESS_KEY_ID=${awsKeyId}`,
        mysql: "mysql -h db -uroot -pS3cr3tPass! shop",
        yaml: "user: alice\npassword: hunter2-hunter2\n",
        env: "DB_PASSWORD=correct-horse-battery",
        flag: "psql --password 'horse staple'",
        json: '{"api_key": "k-123456789"}',
      },
    ]);
    assert.ok(out);
    for (const secret of [
      jwt,
      awsKeyId,
      "S3cr3tPass!",
      "hunter2-hunter2",
      "correct-horse-battery",
      "k-123456789",
      "8f14e45fceea167a5a36dedd4bea2543",
    ]) {
      assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
    }
    assert.ok(!out.includes("horse staple"), out);
    const parsed = JSON.parse(out);
    assert.equal(parsed.command, `curl -H "Authorization: Bearer ${MASKED}" https://api.example.com`);
    assert.equal(parsed.mysql, `mysql -h db -uroot -p${MASKED} shop`);
    assert.equal(parsed.yaml, `user: alice\npassword: ${MASKED}\n`);
    assert.equal(parsed.aws, `export AWS_ACCESS_KEY_ID=${MASKED}`);
  });

  it("free-text patterns leave ordinary commands alone (positive control)", async () => {
    const r = await createArgumentsRedactor("redacted");
    const plain = {
      a: "mkdir -pv /tmp/x",
      b: "docker run -p8080:80 nginx",
      c: "max_tokens=100 and tokens: 5",
      d: "the bearer of bad news",
      e: "ssh -p 2222 host",
    };
    const [out] = await r.redact([plain]);
    assert.deepEqual(JSON.parse(out as string), plain);
  });

  it("a value nested past every limit, or not JSON at all, is hashed or marked in every mode and never fails its batch", async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const throwing = {
      get boom(): string {
        throw new Error("getter");
      },
    };
    const values = [{ deep }, { ok: "fine" }, cyclic, { n: 10n }, throwing, { after: "still here" }];
    const digest = createHash("sha256").update(canonicalJsonUnbounded({ deep })).digest("hex");
    for (const mode of ["redacted", "full", "hashed"] as const) {
      const out = await (await createArgumentsRedactor(mode)).redact(values);
      assert.equal(out.length, values.length, mode);
      const parsed = out.map((o) => JSON.parse(o as string));
      if (mode === "hashed") assert.equal(parsed[0].sha256, digest);
      else if (mode === "redacted") assert.match(parsed[0].deep, /^\[sha256:[0-9a-f]{64} array of 1, /);
      else assert.equal(createHash("sha256").update(canonicalJsonUnbounded(parsed[0])).digest("hex"), digest);
      if (mode !== "hashed") {
        assert.deepEqual(parsed[1], { ok: "fine" }, mode);
        assert.deepEqual(parsed[5], { after: "still here" }, mode);
      }
      assert.deepEqual(parsed[2], { unrecorded: "a cyclic value is not JSON", sha256: null }, mode);
      // The redacted form keeps only JSON values: a BigInt there is dropped like a function.
      if (mode === "redacted") assert.deepEqual(parsed[3], { n: null });
      else assert.deepEqual(parsed[3], { unrecorded: "a BigInt is not JSON", sha256: null }, mode);
      assert.equal(parsed[4].unrecorded, "arguments could not be read as JSON", mode);
    }
  });

  it("arguments under a __proto__ key are recorded, not hidden from the audit log", async () => {
    // JSON.parse makes "__proto__" an own property, and the gateway forwards it as such.
    const args = JSON.parse(
      '{"__proto__":{"path":"/etc/shadow","password":"hunter2"},"n":{"__proto__":"x"}}',
    );
    const [out] = await (await createArgumentsRedactor("redacted")).redact([args]);
    assert.equal(out, `{"__proto__":{"path":"/etc/shadow","password":"${MASKED}"},"n":{"__proto__":"x"}}`);
  });
});
