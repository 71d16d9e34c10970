/**
 * Issue 10 item 7: any caller could create unlimited pending approvals, each one a row, a
 * webhook and an approver's attention, by calling a tool that policy sends to review again
 * and again (with different arguments, or a tool that does not even exist). A caller now has
 * at most `review.maxPendingPerCaller` pending; one more is refused with 429, Retry-After and
 * a JSON-RPC error, without an approval or a webhook, and is audited.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { auditRecordsUntil } from "../helpers/auditRecords.js";
import { cleanup, modern, type RunningGateway, rpc, tempDir } from "../helpers/gateway.js";
import { withoutDecisionId } from "../helpers/mcp.js";
import { sample, scrape } from "../helpers/metrics.js";
import { approvals, startReviewGateway } from "../review/fixtures.js";

describe("approval flood attack", () => {
  let gw: RunningGateway;
  let receiver: Server;
  let flooder: string;
  let flooderId: string;
  let other: string;
  let lister: string;
  let policyDir: string;
  const hooks: unknown[] = [];

  before(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        hooks.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as { port: number }).port;
    // Destructive tools (and tools never seen, which count as destructive) go to review.
    policyDir = tempDir("portcullis-flood-policy-");
    const policyFile = join(policyDir, "policy.yaml");
    writeFileSync(
      policyFile,
      `rules:
  - id: allow-the-rest
    effect: allow
  - id: destructive-needs-review
    effect: review
    match: { methods: [tools/call], tiers: [destructive] }
    review: { timeoutSeconds: 60 }
`,
    );
    gw = await startReviewGateway(
      {
        policy: { paths: [policyFile] },
        review: {
          maxPendingPerCaller: 3,
          webhook: { url: `http://127.0.0.1:${port}/hook`, secret: { env: "FLOOD_WEBHOOK_SECRET" } },
        },
      },
      { FLOOD_WEBHOOK_SECRET: "flood-test-webhook-secret-0123456789" },
    );
    const created = await gw.cli(["keys", "create", "--name", "flooder"]);
    flooder = created.key as string;
    flooderId = created.id as string;
    other = (await gw.cli(["keys", "create", "--name", "bystander"])).key as string;
    lister = (await gw.cli(["keys", "create", "--name", "ghost-caller"])).key as string;
  });
  after(async () => {
    await gw.stop();
    cleanup(gw.dir);
    cleanup(policyDir);
    await new Promise((r) => receiver.close(r));
  });

  const call = (id: number, key: string) => {
    const m = modern(id, "tools/call", { name: "delete_note", arguments: { id: `note-${id}` } }, key);
    return rpc(gw.endpoint("demo"), m.body, m.headers);
  };

  const pendingOf = async (keyId: string) =>
    (
      (await approvals(gw, ["list", "--pending"])) as { credentialId?: string; principalId?: string }[]
    ).filter((a) => JSON.stringify(a).includes(keyId)).length;

  it("calling a reviewed tool again and again stops at review.maxPendingPerCaller: no more approvals, no more webhooks", async (t) => {
    const answers: number[] = [];
    for (let id = 1; id <= 6; id++) answers.push((await call(id, flooder)).status);
    const refused = await call(7, flooder);
    // The three accepted ones each announced their approval.
    for (let i = 0; i < 100 && hooks.length < 3; i++) await sleep(100);
    const pending = await pendingOf(flooderId);
    t.diagnostic(
      `6 calls answered ${answers.join(",")}; 7th ${refused.status} Retry-After ${refused.headers.get("retry-after")}; pending approvals ${pending}; webhooks ${hooks.length}`,
    );
    assert.deepEqual(answers, [200, 200, 200, 429, 429, 429]);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(
      retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter} points at the earliest deadline`,
    );
    assert.equal(refused.json.id, 7);
    assert.equal((refused.json.error as { code: number }).code, -32014);
    assert.equal((refused.json.error as { data: { limit: string } }).data.limit, "pending_approvals");
    assert.equal(pending, 3, "refused calls created no approval");
    assert.equal(hooks.length, 3, "refused calls sent no webhook");
    assert.equal(sample(await scrape(gw), 'portcullis_limit_refusals_total{limit="pending_approvals"}'), 4);
    await auditRecordsUntil(
      gw,
      (r) => r.decision === "deny" && r.reason.includes("review.maxPendingPerCaller"),
    );
    // Another caller is not affected by the flooder's cap.
    const bystander = await call(50, other);
    assert.equal(bystander.status, 200, bystander.text);
    assert.equal(
      (bystander.json.result as { resultType: string }).resultType,
      "input_required",
      "the bystander's call still goes to review",
    );
  });

  it("a tool the upstream does not list is refused before review: no approval, no webhook", async () => {
    const list = modern(60, "tools/list", {}, lister);
    const listed = await rpc(gw.endpoint("demo"), list.body, list.headers);
    assert.equal(listed.status, 200, listed.text);
    const hooksBefore = hooks.length;
    const pendingBefore = (await approvals(gw, ["list", "--pending"])) as unknown[];
    const ghost = modern(61, "tools/call", { name: "wipe_everything", arguments: {} }, lister);
    const res = await rpc(gw.endpoint("demo"), ghost.body, ghost.headers);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(withoutDecisionId(res.json.error), {
      code: -32602,
      message: "Unknown tool: wipe_everything",
    });
    await auditRecordsUntil(gw, (r) => r.decision === "deny" && r.reason.includes("not sent to review"));
    // Positive control: a listed destructive tool from the same caller still goes to review.
    const real = modern(62, "tools/call", { name: "delete_note", arguments: { id: "n-62" } }, lister);
    const held = await rpc(gw.endpoint("demo"), real.body, real.headers);
    assert.equal((held.json.result as { resultType: string }).resultType, "input_required", held.text);
    for (let i = 0; i < 100 && hooks.length < hooksBefore + 1; i++) await sleep(100);
    const pendingAfter = (await approvals(gw, ["list", "--pending"])) as { tool: string }[];
    assert.equal(pendingAfter.length, pendingBefore.length + 1, "only the listed tool created an approval");
    assert.ok(!pendingAfter.some((a) => a.tool === "wipe_everything"));
    assert.equal(hooks.length, hooksBefore + 1, "only the listed tool sent a webhook");
  });
});
