/**
 * Webhook approvals: a new approval is POSTed to the configured webhook, signed with the
 * webhook secret; its approve link shows a confirmation page on GET (no script, strict CSP,
 * nothing decided, so link scanners cannot approve) and decides on POST, after which the
 * held call proceeds. A tampered link and an expired link are refused.
 */
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { deriveReviewKey } from "../../src/review/keys.js";
import { signedLinkPath } from "../../src/review/signedLinks.js";
import { cleanup, modern, type RunningGateway, rpc } from "../helpers/gateway.js";
import { approvals, startReviewGateway } from "../review/fixtures.js";

const WEBHOOK_SECRET = "whsec-test-0123456789abcdef";

interface Notification {
  id: string;
  caller: { id: string; name: string };
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
  expiresAt: string;
  approveUrl: string;
  denyUrl: string;
}

function verified(body: string, header: string | undefined): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!m) return false;
  const expected = createHmac("sha256", WEBHOOK_SECRET).update(`${m[1]}.${body}`).digest();
  return (
    timingSafeEqual(expected, Buffer.from(m[2] as string, "hex")) &&
    Math.abs(Date.now() / 1000 - Number(m[1])) < 300
  );
}

describe("runtime review: signed webhook notifications and links", () => {
  let gw: RunningGateway;
  let receiver: Server;
  let key: string;
  const received: { notification: Notification; verified: boolean }[] = [];
  let waiting: ((n: Notification) => void) | null = null;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const notification = JSON.parse(body) as Notification;
        received.push({
          notification,
          verified: verified(body, req.headers["portcullis-signature"] as string),
        });
        res.writeHead(204).end();
        waiting?.(notification);
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as { port: number }).port;
    gw = await startReviewGateway(
      {
        review: {
          webhook: { url: `http://127.0.0.1:${port}/hook`, secret: { env: "REVIEW_WEBHOOK_SECRET" } },
        },
      },
      { REVIEW_WEBHOOK_SECRET: WEBHOOK_SECRET },
    );
    key = (await gw.cli(["keys", "create", "--name", "hook-agent"])).key as string;
  });
  after(async () => {
    await gw.stop();
    cleanup(gw.dir);
    await new Promise((r) => receiver.close(r));
  });

  const next = () => new Promise<Notification>((r) => (waiting = r));

  const call = (id: number, args: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const m = modern(id, "tools/call", { name: "delete_note", arguments: args, ...extra }, key);
    return rpc(gw.endpoint("demo"), m.body, m.headers);
  };

  it("the webhook receives a signed payload; GET confirms, POST approves, and the call proceeds", async () => {
    const add = modern(
      1,
      "tools/call",
      { name: "add_note", arguments: { title: "t", body: "b", password: "x" } },
      key,
    );
    await rpc(gw.endpoint("demo"), add.body, add.headers);
    const note = "n1";
    const notified = next();
    const first = await call(2, { id: note, apiToken: "sk-should-not-leave" });
    const state = (first.json.result as { requestState: string }).requestState;
    const n = await notified;
    const delivery = received.at(-1);
    assert.ok(delivery?.verified, "HMAC signature verifies with the webhook secret");
    assert.equal(n.tool, "delete_note");
    assert.equal(n.server, "demo");
    assert.equal(n.caller.name, "hook-agent");
    assert.equal(n.arguments.apiToken, "[masked]");
    assert.equal(n.arguments.id, note);
    assert.ok(n.approveUrl.startsWith(`${gw.url}/review/${n.id}/approve?exp=`), n.approveUrl);

    // A link scanner's GET: a confirmation page, nothing decided.
    const page = await fetch(n.approveUrl);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.ok(!/<script/i.test(html), "no script");
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    assert.equal(page.headers.get("referrer-policy"), "no-referrer");
    assert.match(html, /<form method="post"/);
    assert.ok(html.includes(n.id));
    const still = (await approvals(gw, ["list", "--pending"])) as Record<string, unknown>[];
    assert.ok(
      still.some((a) => a.id === n.id),
      "GET did not approve",
    );

    const posted = await fetch(n.approveUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "",
    });
    assert.equal(posted.status, 200, await posted.text());
    const record = ((await approvals(gw, ["list"])) as Record<string, unknown>[]).find((a) => a.id === n.id);
    assert.equal(record?.status, "approved");
    assert.equal(record?.decidedBy, "signed link");
    assert.equal(record?.decidedVia, "webhook");

    const done = await call(3, { id: note, apiToken: "sk-should-not-leave" }, { requestState: state });
    assert.equal(done.status, 200, done.text);
    assert.equal((done.json.result as { resultType?: string }).resultType, "complete");
  });

  it("a 2025-11-25 client's call is held open until the signed link approves it", async () => {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    });
    const client = new Client({ name: "v1-webhook", version: "1.0.0" });
    await client.connect(transport);
    try {
      assert.equal(transport.protocolVersion, "2025-11-25");
      const added = await client.callTool({ name: "add_note", arguments: { title: "held", body: "legacy" } });
      const note = JSON.parse((added.content as { text: string }[])[0]?.text as string).note.id as string;
      const notified = next();
      const pending = client.callTool({ name: "delete_note", arguments: { id: note } }, undefined, {
        resetTimeoutOnProgress: true,
      });
      const n = await notified;
      assert.ok(received.at(-1)?.verified, "HMAC signature verifies");
      const posted = await fetch(n.approveUrl, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "",
      });
      assert.equal(posted.status, 200, await posted.text());
      const result = await pending;
      assert.deepEqual(JSON.parse((result.content as { text: string }[])[0]?.text as string), {
        deleted: note,
      });
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("refuses a tampered link and an expired link", async () => {
    const notified = next();
    await call(4, { id: "n42" });
    const n = await notified;
    const url = new URL(n.approveUrl);
    // Tampered: the deny link's signature on the approve action, another id, a longer expiry.
    const deny = new URL(n.denyUrl);
    const swapped = new URL(url);
    swapped.searchParams.set("sig", deny.searchParams.get("sig") as string);
    const longer = new URL(url);
    longer.searchParams.set("exp", String(Number(url.searchParams.get("exp")) + 86_400));
    for (const bad of [swapped, longer]) {
      for (const method of ["GET", "POST"]) {
        const r = await fetch(bad, { method });
        assert.equal(r.status, 403, `${method} ${bad}`);
      }
    }
    // Expired: a correctly signed link whose time is up.
    const secret = Buffer.from(
      readFileSync(join(gw.dir, "data", "server-secret"), "utf8").trim(),
      "base64url",
    );
    const expired = `${gw.url}${signedLinkPath(deriveReviewKey(secret, "approval-link"), "approve", n.id, new Date(Date.now() - 1000))}`;
    const r = await fetch(expired, { method: "POST" });
    assert.equal(r.status, 410);
    const list = (await approvals(gw, ["list", "--pending"])) as Record<string, unknown>[];
    assert.ok(
      list.some((a) => a.id === n.id),
      "still pending after the refused links",
    );
  });
});
