/**
 * The default policy pack (policies/default) end to end, as a user of the gateway meets it:
 * an API key reads but may not write, a person's OAuth token with a writing scope writes,
 * destructive calls wait for review, prod makes API keys read-only and holds open-world
 * tools, lists show each caller only what it may use, and a credential that never expires
 * is refused. Every refusal carries a decision id the operator finds in the audit log.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { openStore } from "../../src/store/open.js";
import type { StoredAuditRecord } from "../../src/store/types.js";
import {
  DEFAULT_POLICY_PACK,
  DEMO_SERVER,
  modern,
  type RunningGateway,
  rpc,
  startGateway,
} from "../helpers/gateway.js";
import { addUser, userAccessToken } from "../helpers/oauthUser.js";

const demo = { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] };
const defaultPack = { paths: [DEFAULT_POLICY_PACK] };
const READ_TOOLS = ["echo", "fetch_weather", "get_time", "search_notes"];
const ALL_TOOLS = [...READ_TOOLS, "add_note", "delete_note", "reset_notebook", "update_note"].sort();

type RpcError = { code: number; message: string; data?: { decisionId?: string } };

let rpcId = 1;

/** A 2026-07-28 request with a bearer credential (API key or access token). */
async function call(gw: RunningGateway, credential: string, method: string, params = {}) {
  const { body, headers } = modern(rpcId++, method, params, credential);
  return rpc(gw.endpoint("demo"), body, headers);
}

async function listTools(gw: RunningGateway, credential: string) {
  const res = await call(gw, credential, "tools/list");
  assert.equal(res.status, 200, res.text);
  const result = res.json.result as { tools: { name: string }[]; cacheScope?: string };
  return { names: result.tools.map((t) => t.name).sort(), cacheScope: result.cacheScope };
}

/** A 2026-07-28 call held for review: an input_required result naming the approval; the decision id. */
function heldForReview(res: Awaited<ReturnType<typeof rpc>>): string {
  assert.equal(res.status, 200, res.text);
  const result = res.json.result as {
    resultType?: string;
    _meta?: Record<string, { decisionId?: string; approvalId?: string }>;
  };
  assert.equal(result.resultType, "input_required", res.text);
  const review = result._meta?.["portcullis/review"];
  assert.match(review?.approvalId ?? "", /^apr_/, res.text);
  assert.ok(review?.decisionId, res.text);
  assert.doesNotMatch(res.text, /rule|tier|scope/i, "the client never sees the policy's reasoning");
  return review.decisionId;
}

/** Asserts a policy refusal: the request's JSON-RPC error (HTTP 200), its code, a decision id and no rule text. */
function refusal(res: Awaited<ReturnType<typeof rpc>>, code: number): string {
  assert.equal(res.status, 200, res.text);
  const error = res.json.error as RpcError;
  assert.equal(error.code, code, res.text);
  const decisionId = error.data?.decisionId;
  assert.ok(decisionId, `no decision id in ${res.text}`);
  assert.ok(error.message.includes(`(decision ${decisionId})`), error.message);
  assert.doesNotMatch(
    res.text.replaceAll(decisionId, ""),
    /rule|tier|scope|allow/i,
    "the client never sees the policy's reasoning",
  );
  return decisionId;
}

/** The audit record of one decision (the audit log is group-committed within ~50 ms). */
async function auditOf(gw: RunningGateway, decisionId: string): Promise<StoredAuditRecord> {
  const store = await openStore(`${gw.dir}/data/portcullis.db`);
  try {
    for (const until = Date.now() + 5_000; Date.now() < until; await sleep(50)) {
      const [record] = await store.listAudit({ decisionId });
      if (record) return record;
    }
  } finally {
    await store.close();
  }
  assert.fail(`no audit record for decision ${decisionId}`);
}

describe("default policy pack (dev)", () => {
  let gw: RunningGateway;
  let key: string;
  let userToken: string;

  before(async () => {
    gw = await startGateway({
      config: { environment: "dev", policy: defaultPack, oauth: { mode: "builtin" }, servers: { demo } },
    });
    key = (await gw.cli(["keys", "create", "--name", "ci-bot"])).key as string;
    const alice = await addUser(gw, "alice");
    userToken = await userAccessToken(gw, { ...alice, server: "demo", scope: "mcp" });
    // Clients list tools before calling them: the gateway learns each tool's tier from the list.
    await listTools(gw, key);
    await listTools(gw, userToken);
  });
  after(() => gw?.stop());

  it("refuses a write-tier call made with an API key (-32040, decision id found in the audit log with the precise reason)", async () => {
    const res = await call(gw, key, "tools/call", {
      name: "add_note",
      arguments: { title: "from a key", body: "should not be written" },
    });
    const decisionId = refusal(res, -32040);
    const record = await auditOf(gw, decisionId);
    assert.equal(record.decision, "deny");
    assert.equal(record.tool, "add_note");
    assert.equal(record.method, "api_key");
    assert.equal(record.reason, "no rule allows this");
    assert.deepEqual(record.ruleIds, []);
    assert.match(record.policyVersion ?? "", /^[0-9a-f]{12}$/);
    // The key still reads: the refusal is about the tier, not the key.
    const read = await call(gw, key, "tools/call", { name: "search_notes", arguments: { query: "" } });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.error, undefined, read.text);
  });

  it("allows the same write-tier call with a person's OAuth token that grants the scope", async () => {
    const res = await call(gw, userToken, "tools/call", {
      name: "add_note",
      arguments: { title: "from alice", body: "written with her token" },
    });
    assert.equal(res.status, 200, res.text);
    const note = (res.json.result as { structuredContent: { note: { id: string; title: string } } })
      .structuredContent.note;
    assert.equal(note.title, "from alice");
  });

  it("holds a destructive call by a person for review (input_required, pending approval)", async () => {
    const res = await call(gw, userToken, "tools/call", { name: "delete_note", arguments: { id: "n1" } });
    const decisionId = heldForReview(res);
    const record = await auditOf(gw, decisionId);
    assert.equal(record.decision, "review");
    assert.equal(record.tool, "delete_note");
    assert.deepEqual(record.ruleIds, ["destructive-tier-needs-user-oauth-and-review"]);
    // Nothing was deleted: the note is still there.
    const search = await call(gw, userToken, "tools/call", {
      name: "search_notes",
      arguments: { query: "from alice" },
    });
    assert.equal((search.json.result as { structuredContent: { count: number } }).structuredContent.count, 1);
  });

  it("lists differ per caller and are marked cacheScope private", async () => {
    const asKey = await listTools(gw, key);
    const asUser = await listTools(gw, userToken);
    assert.deepEqual(asKey.names, READ_TOOLS, "an API key sees only read-tier tools");
    assert.deepEqual(asUser.names, ALL_TOOLS, "a person sees write tools and the destructive ones (review)");
    assert.equal(asKey.cacheScope, "private");
    assert.equal(asUser.cacheScope, "private");
  });
});

describe("default policy pack (prod)", () => {
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    // prod refuses anonymous servers and a plain-http built-in authorization server at startup,
    // so this gateway has API keys only.
    gw = await startGateway({ config: { environment: "prod", policy: defaultPack, servers: { demo } } });
    key = (await gw.cli(["keys", "create", "--name", "prod-reader"])).key as string;
  });
  after(() => gw?.stop());

  it("in prod an API key is read-only: reads pass, writes are refused, open-world tools need review", async () => {
    assert.deepEqual(
      (await listTools(gw, key)).names,
      READ_TOOLS,
      "open-world read tools are listed (they can be reviewed)",
    );
    const read = await call(gw, key, "tools/call", { name: "get_time", arguments: {} });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.error, undefined, read.text);
    const resource = await call(gw, key, "resources/read", { uri: "notes://index" });
    assert.equal(resource.status, 200, resource.text);

    const write = await call(gw, key, "tools/call", {
      name: "update_note",
      arguments: { id: "n1", body: "changed in prod" },
    });
    const writeDecision = refusal(write, -32040);
    const writeRecord = await auditOf(gw, writeDecision);
    assert.deepEqual(writeRecord.ruleIds, ["prod-api-keys-read-only", "prod-no-bare-key-writes"]);
    assert.equal(writeRecord.environment, "prod");

    const openWorld = await call(gw, key, "tools/call", {
      name: "fetch_weather",
      arguments: { city: "Oslo" },
    });
    const reviewDecision = heldForReview(openWorld);
    assert.deepEqual((await auditOf(gw, reviewDecision)).ruleIds, ["prod-open-world-needs-review"]);
  });
});

/**
 * An external authorization server that issues access tokens without `exp`, trusted by an
 * operator who dropped `exp` from `oauth.requiredClaims`: the only way to present the
 * gateway with a credential that never expires (API keys and the built-in authorization
 * server always set an expiry).
 */
describe("default policy pack: standing privilege", () => {
  let gw: RunningGateway;
  let issuer: Server;
  let issuerUrl: string;
  let privateKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] };
    issuer = createServer((req, res) => {
      res.writeHead(req.url === "/jwks" ? 200 : 404, { "content-type": "application/json" });
      res.end(req.url === "/jwks" ? JSON.stringify(jwks) : "{}");
    });
    await new Promise<void>((r) => issuer.listen(0, "127.0.0.1", r));
    issuerUrl = `http://127.0.0.1:${(issuer.address() as AddressInfo).port}`;
    gw = await startGateway({
      config: {
        environment: "dev",
        policy: defaultPack,
        oauth: { mode: "external", issuer: issuerUrl, jwksUri: `${issuerUrl}/jwks`, requiredClaims: ["sub"] },
        servers: { demo },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await new Promise((r) => issuer?.close(r));
  });

  const token = (expiresIn: string | null) => {
    const jwt = new SignJWT({ scope: "mcp", client_id: "agent" })
      .setProtectedHeader({ alg: "ES256", kid: "k1", typ: "at+jwt" })
      .setIssuer(issuerUrl)
      .setSubject("carol")
      .setAudience(gw.endpoint("demo"))
      .setIssuedAt()
      .setJti(`jti-${rpcId++}`);
    if (expiresIn !== null) jwt.setExpirationTime(expiresIn);
    return jwt.sign(privateKey);
  };

  it("refuses a credential without expiry", async () => {
    const expiring = await token("5m");
    assert.deepEqual(
      (await listTools(gw, expiring)).names,
      ALL_TOOLS,
      "the same issuer's expiring token works",
    );

    const standing = await token(null);
    for (const [method, params] of [
      ["tools/list", {}],
      ["tools/call", { name: "get_time", arguments: {} }],
    ] as const) {
      const res = await call(gw, standing, method, params);
      const decisionId = refusal(res, -32040);
      const record = await auditOf(gw, decisionId);
      assert.equal(record.method, "oauth");
      assert.deepEqual(record.ruleIds, ["refuse-credentials-without-expiry"], method);
    }
  });
});
