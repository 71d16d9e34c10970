/**
 * Approvals (table `approvals`, migration 007; src/review/). Every state change is a
 * conditional UPDATE (so two deciders, or two consumers, cannot both win) announced on the
 * change feed: running gateways waiting on the approval hear of it (SQLite data_version,
 * PostgreSQL NOTIFY).
 */
import { approvalToRow, rowToApproval } from "../approvals.js";
import type {
  ApprovalDecision,
  ApprovalDecisionOutcome,
  ApprovalRecord,
  ApprovalRepository,
  ApprovalStatus,
  NewApproval,
} from "../types.js";
import { checkLimit, DEFAULT_LIST_LIMIT, type StoreContext } from "./context.js";

export class SqlApprovalRepository implements ApprovalRepository {
  constructor(private readonly ctx: StoreContext) {}

  async insertApproval(approval: NewApproval): Promise<void> {
    await this.ctx.db.insertInto("approvals").values(approvalToRow(approval)).execute();
  }

  async getApproval(id: string): Promise<ApprovalRecord | undefined> {
    const row = await this.ctx.db.selectFrom("approvals").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? undefined : rowToApproval(row);
  }

  async pendingApprovalsOf(
    principalId: string,
    at: Date,
  ): Promise<{ count: number; nextExpiry: Date | null }> {
    const row = await this.ctx.db
      .selectFrom("approvals")
      .select((eb) => [eb.fn.countAll().as("count"), eb.fn.min("expires_at").as("next")])
      .where("status", "=", "pending")
      .where("principal_id", "=", principalId)
      .where("expires_at", ">", at.getTime())
      .executeTakeFirst();
    const next = row?.next ?? null;
    return { count: Number(row?.count ?? 0), nextExpiry: next === null ? null : new Date(Number(next)) };
  }

  async listApprovals(opts: { status?: ApprovalStatus; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = checkLimit("listApprovals", opts.limit ?? DEFAULT_LIST_LIMIT);
    let q = this.ctx.db
      .selectFrom("approvals")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id")
      .limit(limit);
    if (opts.status !== undefined) q = q.where("status", "=", opts.status);
    return (await q.execute()).map(rowToApproval);
  }

  async decideApproval(id: string, d: ApprovalDecision): Promise<ApprovalDecisionOutcome> {
    const at = d.at.getTime();
    const changed = await this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({
          status: d.decision,
          decided_at: at,
          decided_by: d.by,
          decided_via: d.via,
          reason: d.reason,
          ...(d.decision === "approved" && d.expiresAt !== undefined
            ? { expires_at: d.expiresAt.getTime() }
            : {}),
        })
        .where("id", "=", id)
        .where("status", "=", "pending")
        .where("expires_at", ">", at)
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
    const record = (await this.getApproval(id)) ?? null;
    return { outcome: changed ? "decided" : record === null ? "unknown" : "not_pending", record };
  }

  consumeApproval(id: string, at: Date): Promise<boolean> {
    return this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({ status: "consumed", consumed_at: at.getTime() })
        .where("id", "=", id)
        .where("status", "=", "approved")
        .where("expires_at", ">", at.getTime())
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }

  expireApproval(id: string, at: Date): Promise<boolean> {
    return this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("approvals")
        .set({ status: "expired" })
        .where("id", "=", id)
        .where("status", "in", ["pending", "approved"])
        .where("expires_at", "<=", at.getTime())
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }
}
