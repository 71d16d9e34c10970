/**
 * Runtime review for 2026-07-28 clients (MCP multi round-trip requests): the gateway answers
 * a call policy sends to review with an `input_required` result whose requestState names the
 * approval; an approver decides with `portcullis approvals` in another process; the retry
 * carrying the requestState gets the tool's result, a refusal naming the approval, or
 * "still pending". Attacks: self-approval, approval replay, changed arguments, forged state.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from "@modelcontextprotocol/client";
import { auditRecords } from "../helpers/audit.js";
import { cleanup, createKey, modern, type RunningGateway, rpc } from "../helpers/gateway.js";
import { jsonOf } from "../helpers/mcp.js";
import { waitFor } from "../helpers/wait.js";
import { approvals, approvalsRaw, pendingApproval, startReviewGateway } from "../review/fixtures.js";

interface ReviewMeta {
  approvalId: string;
  status: string;
  expiresAt: string;
  message: string;
}

describe("runtime review: 2026-07-28 clients get input_required and retry with requestState", () => {
  let gw: RunningGateway;
  let key: string;
  let keyId: string;
  let otherKey: string;

  before(async () => {
    gw = await startReviewGateway();
    ({ key, id: keyId } = await createKey(gw, "review-agent"));
    ({ key: otherKey } = await createKey(gw, "other-agent"));
  });
  after(async () => {
    await gw.stop();
    cleanup(gw.dir);
  });

  const call = (id: number, args: Record<string, unknown>, extra: Record<string, unknown> = {}, k = key) => {
    const m = modern(id, "tools/call", { name: "delete_note", arguments: args, ...extra }, k);
    return rpc(gw.endpoint("demo"), m.body, m.headers);
  };

  async function addNote(k = key): Promise<string> {
    const m = modern(1, "tools/call", { name: "add_note", arguments: { title: "t", body: "b" } }, k);
    const r = await rpc(gw.endpoint("demo"), m.body, m.headers);
    return jsonOf<{ note: { id: string } }>(r.json.result).note.id;
  }

  /** The note ids the upstream holds for this caller: its own record of which deletes ran. */
  async function noteIds(k = key): Promise<string[]> {
    const m = modern(2, "tools/call", { name: "search_notes", arguments: { query: "" } }, k);
    const r = await rpc(gw.endpoint("demo"), m.body, m.headers);
    assert.equal(r.status, 200, r.text);
    return jsonOf<{ notes: { id: string }[] }>(r.json.result).notes.map((n) => n.id);
  }

  /** Allow records of a delete_note call for this note in the audit trail. */
  async function allowedDeletes(note: string): Promise<number> {
    const records = await auditRecords(gw, { tool: "delete_note", decision: "allow" });
    return records.filter(
      (r) => r.rpcMethod === "tools/call" && JSON.stringify(r.arguments) === JSON.stringify({ id: note }),
    ).length;
  }

  async function firstCall(
    args: Record<string, unknown>,
    k = key,
  ): Promise<{ state: string; meta: ReviewMeta }> {
    const r = await call(10, args, {}, k);
    assert.equal(r.status, 200, r.text);
    const result = r.json.result as Record<string, unknown>;
    assert.equal(result.resultType, "input_required", r.text);
    assert.equal(typeof result.requestState, "string");
    assert.equal(result.inputRequests, undefined);
    const meta = (result._meta as Record<string, ReviewMeta>)["portcullis/review"] as ReviewMeta;
    assert.match(meta.approvalId, /^apr_[0-9A-Za-z]{16}$/);
    assert.equal(meta.status, "pending");
    assert.ok(meta.message.includes(meta.approvalId));
    return { state: result.requestState as string, meta };
  }

  it("answers input_required, stays pending, then forwards the approved retry once", async () => {
    const note = await addNote();
    const { state, meta } = await firstCall({ id: note });
    // Retried before anyone decided: the same answer, with the same approval.
    const again = await call(11, { id: note }, { requestState: state });
    assert.equal((again.json.result as Record<string, unknown>).resultType, "input_required");
    assert.equal((again.json.result as Record<string, unknown>).requestState, state);

    const approved = (await approvals(gw, ["approve", meta.approvalId, "--by", "alice-operator"])) as Record<
      string,
      unknown
    >;
    assert.equal(approved.status, "approved");
    assert.equal(approved.decidedBy, "alice-operator");
    assert.equal(approved.decidedVia, "cli");

    const done = await call(12, { id: note }, { requestState: state });
    assert.equal(done.status, 200, done.text);
    const result = done.json.result as { content: { text: string }[]; isError?: boolean };
    assert.notEqual(result.isError, true, done.text);
    assert.deepEqual(JSON.parse((result.content[0] as { text: string }).text), { deleted: note });
    // Positive control for the refusals below: the approved delete ran upstream and was audited.
    assert.ok(!(await noteIds()).includes(note), "the approved delete ran upstream");
    assert.equal(await allowedDeletes(note), 1);

    const shown = (await approvals(gw, ["list"])) as Record<string, unknown>[];
    assert.equal(shown.find((a) => a.id === meta.approvalId)?.status, "consumed");
  });

  it("refuses approval replay", async () => {
    const note = await addNote();
    const { state, meta } = await firstCall({ id: note });
    await approvals(gw, ["approve", meta.approvalId, "--by", "alice-operator"]);
    const first = await call(20, { id: note }, { requestState: state });
    assert.equal(first.status, 200, first.text);
    const replay = await call(21, { id: note }, { requestState: state });
    assert.equal(replay.status, 200, replay.text);
    const error = replay.json.error as { code: number; message: string; data: { approvalId: string } };
    assert.equal(error.code, -32041);
    assert.equal(error.data.approvalId, meta.approvalId);
    assert.match(error.message, /already used/);
    assert.equal(await allowedDeletes(note), 1, "the replay was not forwarded a second time");
  });

  it("refuses an approval for changed arguments", async () => {
    const note = await addNote();
    const other = await addNote();
    const { state, meta } = await firstCall({ id: note });
    await approvals(gw, ["approve", meta.approvalId, "--by", "alice-operator"]);
    const swapped = await call(30, { id: other }, { requestState: state });
    assert.equal(swapped.status, 200, swapped.text);
    const error = swapped.json.error as { code: number; message: string; data: { approvalId: string } };
    assert.equal(error.code, -32041);
    assert.equal(error.data.approvalId, meta.approvalId);
    assert.match(error.message, /arguments changed/);
    assert.ok((await noteIds()).includes(other), "the swapped delete never ran upstream");
    assert.equal(await allowedDeletes(other), 0, "no allow record for the swapped arguments");
    // The refused attempt did not use the approval up: the approved call itself still runs.
    const original = await call(31, { id: note }, { requestState: state });
    assert.equal(original.status, 200, original.text);
    const ids = await noteIds();
    assert.ok(!ids.includes(note) && ids.includes(other), "exactly the approved note was deleted");
    const shown = (await approvals(gw, ["list"])) as Record<string, unknown>[];
    assert.equal(shown.find((a) => a.id === meta.approvalId)?.status, "consumed");
  });

  it("refuses self-approval", async () => {
    const note = await addNote();
    const { meta } = await firstCall({ id: note });
    for (const self of ["review-agent", `key:${keyId}`, keyId]) {
      const r = await approvalsRaw(gw, ["approve", meta.approvalId, "--by", self]);
      assert.equal(r.code, 2, `${self}: ${r.stdout}`);
      assert.match(r.stdout, /can never decide their own call/);
    }
    const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
    // Undecided: still pending, or expired when the refused attempts outlasted the 60 s review
    // on a loaded machine (each CLI run is a process start).
    const status = list.find((a) => a.id === meta.approvalId)?.status;
    assert.ok(status === "pending" || status === "expired", `undecided, not ${String(status)}`);
    assert.ok((await noteIds()).includes(note), "nothing ran upstream");
  });

  it("refuses a requestState presented by another caller, and a forged one", async () => {
    const note = await addNote();
    // The other caller's own upstream notebook gets a note with the same id, so a stolen
    // approval forwarded for it would leave a trace there.
    let othersNote = await addNote(otherKey);
    for (let i = 0; othersNote !== note && i < 100; i++) othersNote = await addNote(otherKey);
    assert.equal(othersNote, note);
    const { state, meta } = await firstCall({ id: note });
    await approvals(gw, ["approve", meta.approvalId, "--by", "alice-operator"]);
    const stolen = await call(40, { id: note }, { requestState: state }, otherKey);
    assert.equal(stolen.status, 200, stolen.text);
    assert.equal((stolen.json.error as { data: { approvalId: string } }).data.approvalId, meta.approvalId);
    const forged = `${state.slice(0, -4)}AAAA`;
    const bad = await call(41, { id: note }, { requestState: forged });
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.json.error as { code: number }).code, -32602);
    assert.ok((await noteIds()).includes(note), "neither ran upstream for the approving caller");
    assert.ok((await noteIds(otherKey)).includes(othersNote), "nor for the other caller");
    assert.equal(await allowedDeletes(note), 0, "no allow record for either");
  });

  it("a denied call is refused with the approval id and the approver's decision audited", async () => {
    const note = await addNote();
    const { state, meta } = await firstCall({ id: note });
    const denied = (await approvals(gw, [
      "deny",
      meta.approvalId,
      "--by",
      "bob-operator",
      "--reason",
      "not today",
    ])) as Record<string, unknown>;
    assert.equal(denied.status, "denied");
    const r = await call(50, { id: note }, { requestState: state });
    assert.equal(r.status, 200, r.text);
    const error = r.json.error as {
      code: number;
      message: string;
      data: { approvalId: string; status: string; decisionId: string };
    };
    assert.equal(error.code, -32041);
    assert.match(error.message, new RegExp(meta.approvalId));
    assert.equal(error.data.status, "denied");
    // The refusal's decision id is the one its audit record holds.
    const refusalRecord = await waitFor("the refusal's audit record", async () =>
      (await auditRecords(gw, { decision: "deny" })).find((d) => d.decisionId === error.data.decisionId),
    );
    assert.match(refusalRecord.reason, /^denied by bob-operator/);
    // A decided approval cannot be decided again.
    const late = await approvalsRaw(gw, ["approve", meta.approvalId, "--by", "carol-operator"]);
    assert.equal(late.code, 2);
    assert.match(late.stdout, /denied, not pending/);
    assert.ok((await noteIds()).includes(note), "the denied delete never ran upstream");
    assert.equal(await allowedDeletes(note), 0, "no allow record for it");
    const decided = (await auditRecords(gw, { tool: "delete_note" })).filter(
      (r) => JSON.stringify(r.arguments) === JSON.stringify({ id: note }),
    );
    assert.ok(decided.length > 0, "the review and its refusal are in the audit trail");
  });

  it("the official v2 SDK client retries with the requestState by itself and gets the result once approved", async () => {
    const note = await addNote();
    const client = new ClientV2(
      { name: "v2-review", version: "2.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } }, inputRequired: { maxRounds: 40 } },
    );
    await client.connect(
      new TransportV2(new URL(gw.endpoint("demo")), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    try {
      const pending = client.callTool({ name: "delete_note", arguments: { id: note } });
      const approval = await pendingApproval(gw, "delete_note");
      await approvals(gw, ["approve", String(approval.id), "--by", "alice-operator"]);
      const result = (await pending) as { content: { type: string; text: string }[] };
      assert.deepEqual(JSON.parse((result.content[0] as { text: string }).text), { deleted: note });
    } finally {
      await client.close();
    }
  });
});
