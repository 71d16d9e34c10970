/**
 * Runtime review for 2025-11-25 clients: the call is held open on an SSE response with
 * progress notifications naming the approval until an approver decides (CLI, in another
 * process) or the review times out, which ends in a JSON-RPC error naming the approval id.
 *
 * The upstream is the demo server, whose notebook is its own record: every refused
 * delete_note or reset_notebook targets notes that exist, so a call forwarded anyway would
 * leave a trace (the note gone), and the audit trail must hold no allow record for it. The
 * first test is the positive control: an approved delete does remove its note.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { auditRecords } from "../helpers/audit.js";
import { cleanup, createKey, type RunningGateway } from "../helpers/gateway.js";
import { jsonOf } from "../helpers/mcp.js";
import { waitFor } from "../helpers/wait.js";
import { approvals, pendingApproval, startReviewGateway } from "../review/fixtures.js";

describe("runtime review: 2025-11-25 clients are held open until the decision", () => {
  let gw: RunningGateway;
  let key: string;

  before(async () => {
    gw = await startReviewGateway();
    ({ key } = await createKey(gw, "legacy-agent"));
  });
  after(async () => {
    await gw.stop();
    cleanup(gw.dir);
  });

  async function v1(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const transport = new StreamableHTTPClientTransport(new URL(gw.endpoint("demo")), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    });
    const client = new Client({ name: "v1-review", version: "1.0.0" });
    await client.connect(transport);
    assert.equal(transport.protocolVersion, "2025-11-25");
    return { client, transport };
  }

  async function addNote(client: Client): Promise<string> {
    const added = await client.callTool({ name: "add_note", arguments: { title: "keep", body: "me" } });
    return jsonOf<{ note: { id: string } }>(added).note.id;
  }

  /** The note ids the upstream holds: its own record of whether a delete or reset ran. */
  async function noteIds(): Promise<string[]> {
    const { client, transport } = await v1();
    try {
      const found = await client.callTool({ name: "search_notes", arguments: { query: "" } });
      return jsonOf<{ notes: { id: string }[] }>(found).notes.map((n) => n.id);
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  }

  /** Allow records of a tools/call to `tool` (with these arguments, when given) in the audit trail. */
  async function allowedCalls(tool: string, args?: Record<string, unknown>): Promise<number> {
    const records = await auditRecords(gw, { tool, decision: "allow" });
    return records.filter(
      (r) =>
        r.rpcMethod === "tools/call" &&
        (args === undefined || JSON.stringify(r.arguments) === JSON.stringify(args)),
    ).length;
  }

  it("holds the call with progress notifications; approved via the CLI, the client receives the result", async () => {
    const { client, transport } = await v1();
    try {
      const added = await client.callTool({ name: "add_note", arguments: { title: "x", body: "y" } });
      const note = JSON.parse((added.content as { text: string }[])[0]?.text as string).note.id as string;
      const progress: { progress: number; message?: string }[] = [];
      const pending = client.callTool({ name: "delete_note", arguments: { id: note } }, undefined, {
        onprogress: (p) => progress.push(p),
        resetTimeoutOnProgress: true,
      });
      const approval = await pendingApproval(gw, "delete_note");
      await new Promise((r) => setTimeout(r, 1500));
      await approvals(gw, ["approve", String(approval.id), "--by", "alice-operator"]);
      const result = await pending;
      assert.deepEqual(JSON.parse((result.content as { text: string }[])[0]?.text as string), {
        deleted: note,
      });
      // Positive control for the refusals below: an approved delete leaves its trace upstream
      // (the note is gone) and in the audit trail (an allow record for these arguments).
      assert.ok(!(await noteIds()).includes(note), "the approved delete ran upstream");
      assert.equal(await allowedCalls("delete_note", { id: note }), 1);
      assert.ok(progress.length >= 1, "progress notifications while held");
      assert.ok(
        progress.every((p) => p.message?.includes(String(approval.id))),
        JSON.stringify(progress),
      );
      const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
      assert.equal(list.find((a) => a.id === approval.id)?.status, "consumed");
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("a denied call ends in a JSON-RPC error naming the approval id, and never runs", async () => {
    const { client, transport } = await v1();
    try {
      const note = await addNote(client);
      const pending = client.callTool({ name: "delete_note", arguments: { id: note } }).then(
        () => assert.fail("a denied call must not succeed"),
        (err: unknown) => err,
      );
      const approval = await pendingApproval(gw, "delete_note");
      await approvals(gw, ["deny", String(approval.id), "--by", "bob-operator", "--reason", "no"]);
      const err = await pending;
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32041);
      assert.match(err.message, new RegExp(String(approval.id)));
      assert.match(err.message, /denied/);
      // The refusal on the held stream names the decision its audit record holds.
      const decisionId = (err.data as { decisionId?: string } | undefined)?.decisionId;
      assert.ok(decisionId, JSON.stringify(err.data));
      // (The approver's decision is recorded under the same decision id: one review, its steps.)
      await waitFor("the refusal's audit record", async () =>
        (await auditRecords(gw, { decision: "deny" })).some(
          (r) => r.decisionId === decisionId && r.reason.startsWith("denied by bob-operator"),
        ),
      );
      assert.ok((await noteIds()).includes(note), "the upstream never ran the denied delete");
      assert.equal(await allowedCalls("delete_note", { id: note }), 0, "no allow record for it");
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("a review nobody decides times out with a JSON-RPC error naming the approval id, and never runs", async () => {
    const { client, transport } = await v1();
    try {
      const note = await addNote(client);
      const resetsBefore = await allowedCalls("reset_notebook");
      const started = Date.now();
      const err = await client.callTool({ name: "reset_notebook", arguments: { confirm: true } }).then(
        () => assert.fail("an undecided call must not run"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32041);
      assert.match(err.message, /timed out/);
      const id = /apr_[0-9A-Za-z]{16}/.exec(err.message)?.[0];
      assert.ok(id, err.message);
      assert.ok(Date.now() - started >= 1800, "held until the 2 s review deadline");
      const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
      assert.equal(list.find((a) => a.id === id)?.status, "expired");
      assert.ok((await noteIds()).includes(note), "the upstream never ran the undecided reset");
      assert.equal(await allowedCalls("reset_notebook"), resetsBefore, "no allow record for it");
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  });

  it("a client that goes away stops waiting; the approval stays for the audit, and a later approval runs nothing", async () => {
    const { client, transport } = await v1();
    const note = await addNote(client);
    const controller = new AbortController();
    const pending = client
      .callTool({ name: "delete_note", arguments: { id: note } }, undefined, { signal: controller.signal })
      .then(
        () => assert.fail("an abandoned call must not return a result"),
        (e: unknown) => e,
      );
    const approval = await pendingApproval(gw, "delete_note");
    controller.abort(new Error("the client went away"));
    const err = await pending;
    assert.ok(err instanceof Error, String(err));
    assert.match(err.message, /went away|abort/i);
    await transport.terminateSession().catch(() => {});
    await client.close();
    const list = (await approvals(gw, ["list"])) as Record<string, unknown>[];
    assert.equal(list.find((a) => a.id === approval.id)?.status, "pending");
    // Nobody waits for it any more: approving it now forwards nothing.
    await approvals(gw, ["approve", String(approval.id), "--by", "alice-operator"]);
    assert.ok((await noteIds()).includes(note), "the abandoned delete never ran upstream");
    assert.equal(await allowedCalls("delete_note", { id: note }), 0, "no allow record for it");
  });
});
