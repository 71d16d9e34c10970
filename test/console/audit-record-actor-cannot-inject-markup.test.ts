/**
 * The console's audit record page shows the task a record is about and the RFC 8693 actor
 * chain acting for its principal. The actor's `sub` comes from whoever asked for the task (a
 * token exchange's `actor_token`, `tasks start --actor`): it is shown as text, never markup.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { auditRecordPage } from "../../src/console/auditPages.js";
import type { StoredAuditRecord } from "../../src/store/types.js";

function record(detail: Record<string, unknown> | null): StoredAuditRecord {
  return {
    seq: 7,
    at: new Date("2026-07-28T12:00:00Z"),
    environment: "prod",
    principal: "key:4fT0qk2LxW9a",
    method: "task",
    credentialId: "jti-1",
    server: "demo",
    rpcMethod: "tools/call",
    tool: "get_time",
    decision: "allow",
    reason: "allowed by read-tier-tools",
    latencyUs: 120,
    detail,
  };
}

describe("console audit record: task and actor", () => {
  it("shows the task id and the actor chain, current actor first", () => {
    const page = auditRecordPage(
      [record({ task: "tsk_abc", actor: ["agent-7", "ci-runner"] })],
      new Map(),
    ).toString();
    assert.match(page, /<th scope="row">Task<\/th><td><code>tsk_abc<\/code><\/td>/);
    assert.match(page, /<code>agent-7<\/code> ← <code>ci-runner<\/code>/);
  });

  it("an actor named like markup is shown as text", () => {
    const page = auditRecordPage(
      [record({ task: "tsk_abc", actor: ['<img src=x onerror="alert(1)">'] })],
      new Map(),
    ).toString();
    assert.equal(page.includes("<img"), false, "no element from the actor's sub");
    assert.match(page, /<code>&#60;img src=x onerror=&#34;alert\(1\)&#34;&#62;<\/code>/);
  });

  it("a record about no task says so", () => {
    const page = auditRecordPage([record(null)], new Map()).toString();
    assert.match(page, /<th scope="row">Task<\/th><td>—<\/td>/);
  });
});
