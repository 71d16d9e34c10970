/**
 * `portcullis approvals list|approve|deny`: the approvers' command line for runtime review
 * (src/review/). A decision is one store write announced on the change feed, so the gateway
 * holding the call (or answering the client's retry) hears of it within a fraction of a
 * second, and one audit record naming who decided. The approver is the OS account running the
 * command (./auditTrail.ts operatorAccount), not a name typed on the command line: it is never
 * the caller nor the owner of the caller's key (separation of duties, src/review/).
 */
import type { Command } from "commander";
import { pendingApprovals } from "../admin/approvals.js";
import { ConfigError } from "../config/load.js";
import { APPROVAL_ID } from "../review/binding.js";
import { decideApproval } from "../review/decide.js";
import type { ApprovalRecord } from "../store/types.js";
import { operatorAccount, operatorPrincipal, recordManagement } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

/** Bad operator input or a refused decision; exits 2 like every usage error. */
export class ApprovalInputError extends ConfigError {
  override name = "ApprovalInputError";
}

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

/** A pending approval past its deadline is shown as expired (the gateway records it so). */
function describeApproval(a: ApprovalRecord, now = Date.now()): Record<string, unknown> {
  const status = a.status === "pending" && a.expiresAt.getTime() <= now ? "expired" : a.status;
  return {
    id: a.id,
    status,
    environment: a.environment,
    caller: a.principalName,
    callerId: a.principalId,
    callerMethod: a.principalMethod,
    server: a.server,
    method: a.rpcMethod,
    tool: a.tool,
    arguments: a.argumentsSummary,
    argumentsHash: a.argumentsHash,
    decisionId: a.decisionId,
    ruleIds: a.ruleIds,
    createdAt: iso(a.createdAt),
    expiresAt: iso(a.expiresAt),
    decidedAt: iso(a.decidedAt),
    decidedBy: a.decidedBy,
    decidedVia: a.decidedVia,
    reason: a.reason,
    consumedAt: iso(a.consumedAt),
  };
}

function humanApproval(view: Record<string, unknown>): string {
  return Object.entries(view)
    .map(
      ([k, v]) =>
        `${k.padEnd(14)} ${v !== null && typeof v === "object" ? JSON.stringify(v) : String(v ?? "-")}`,
    )
    .join("\n");
}

export function registerApprovalCommands(program: Command, deps: CliDeps): void {
  const { withStoreOptions, withStore, print } = deps;
  const approvals = program
    .command("approvals")
    .description("runtime review: list, approve and deny held calls");

  withStoreOptions(approvals.command("list"))
    .description("list approvals, newest first")
    .option("--pending", "only calls still waiting for a decision")
    .option("--limit <n>", "at most this many", "100")
    .option("--json", "print a JSON array")
    .action(async (opts: { pending?: boolean; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ApprovalInputError("--limit must be a positive integer");
      await withStore(opts, async (store) => {
        const now = Date.now();
        const list = (
          opts.pending ? await pendingApprovals(store, limit, now) : await store.listApprovals({ limit })
        ).map((a) => describeApproval(a, now));
        print(opts.json, list, () =>
          table(
            list.map((v) => ({ ...v, tool: `${v.server}/${v.tool}` })),
            ["id", "status", "caller", "tool", "createdAt", "expiresAt", "decidedBy"],
            opts.pending ? "(no pending approvals)" : "(no approvals)",
          ),
        );
      });
    });

  for (const action of ["approve", "deny"] as const) {
    withStoreOptions(approvals.command(action))
      .description(action === "approve" ? "approve a held call (it runs once)" : "deny a held call")
      .argument("<id>", "approval id (apr_…)")
      .option("--reason <text>", "why (recorded in the audit log)")
      .option("--json", "print one JSON object")
      .action(async (id: string, opts: { reason?: string; json?: boolean }) => {
        if (!APPROVAL_ID.test(id))
          throw new ApprovalInputError(`'${id}' is not an approval id (apr_ and 16 letters/digits)`);
        await withStore(opts, async (store, { config }) => {
          const outcome = await decideApproval(
            store,
            id,
            action === "approve" ? "approved" : "denied",
            { name: operatorAccount(), principalId: operatorPrincipal(), via: "cli" },
            {
              reason: opts.reason ?? null,
              audit: (record) => recordManagement(store, config, [record]),
            },
          );
          if (!outcome.ok) throw new ApprovalInputError(outcome.message);
          const view = describeApproval(outcome.record);
          print(
            opts.json,
            view,
            () => `${action === "approve" ? "approved" : "denied"} ${id}\n\n${humanApproval(view)}`,
          );
        });
      });
  }
}
