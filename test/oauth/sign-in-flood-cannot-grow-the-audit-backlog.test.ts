/**
 * A flood of sign-in attempts while the audit trail cannot be written (a store outage) must
 * neither be decided unrecorded nor grow the audit writer's memory: once the backlog holds
 * `maxPendingRecords`, every further attempt is refused 503 with Retry-After before its
 * password is checked or counted, and when the store answers again the backlog drains, each
 * recorded attempt is in the chain and one record counts the refused ones (docs/audit.md,
 * "Sign-ins"). Throttled attempts are recorded one by one under the same bound.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { DEFAULT_ABUSE_LIMITS } from "../../src/oauth/abuseLimits.js";
import { openSignInForm } from "../helpers/signInForm.js";
import { waitFor } from "../helpers/wait.js";
import { type AuditOutage, authorizationUrl, pkce, registerClient, startHarness } from "./asHarness.js";

it("a sign-in flood during an audit store outage is refused 503 past the backlog bound, and the trail counts it once the store returns", async () => {
  const outage: AuditOutage = { down: false };
  const h = await startHarness({
    maxPendingRecords: 5,
    auditOutage: outage,
    limits: { ...DEFAULT_ABUSE_LIMITS, signInFailuresPerUser: 3, signInFailuresPerAddress: 1000 },
  });
  try {
    const clientId = await registerClient(h, { client_name: "Flood" });
    const form = await openSignInForm(authorizationUrl(h, clientId, pkce()));
    try {
      // Control: with the store up, a wrong password is answered 401 and recorded.
      assert.equal((await form.post("alice", "wrong 0")).status, 401);
      await h.audit.flush();
      assert.equal(h.audit.pending, 0);

      outage.down = true;
      const statuses: number[] = [];
      for (let i = 1; i <= 30; i++) {
        const answer = await form.post("alice", `wrong ${i}`);
        statuses.push(answer.status);
        if (answer.status === 503) assert.equal(answer.retryAfter, "5");
        assert.ok(h.audit.pending <= 5, `the backlog stays bounded (${h.audit.pending})`);
      }
      // Two more wrong passwords, then throttled ones (recorded too), until the backlog is full.
      assert.deepEqual(statuses.slice(0, 5), [401, 401, 429, 429, 429]);
      assert.deepEqual(new Set(statuses.slice(5)), new Set([503]));
    } finally {
      await form.close();
    }

    outage.down = false;
    await waitFor("the backlog to drain", () => h.audit.pending === 0 || undefined, { timeoutMs: 15_000 });
    await h.audit.flush();
    const records = await h.store.searchAudit({ limit: 100, order: "asc" });
    const attempts = records.filter((r) => r.method === "sign_in");
    assert.deepEqual(
      attempts.map((r) => (r.detail as { outcome: string }).outcome),
      ["wrong_password", "wrong_password", "wrong_password", "throttled", "throttled", "throttled"],
    );
    const overflow = records.filter(
      (r) => (r.detail as { event?: string } | null)?.event === "audit.backlog_full",
    );
    assert.equal(overflow.length, 1);
    assert.equal((overflow[0]?.detail as { refused: number }).refused, 25);
    const report = await verifyAuditLog(h.store);
    assert.equal(report.ok, true, JSON.stringify(report));
  } finally {
    await h.close();
  }
});
