/**
 * Tasks (table `tasks`, migration 011; src/tasks/, docs/tasks.md). Creating and ending a
 * task run through the change feed's transaction (`ctx.mutate`: the keys revision is bumped
 * and announced), so every replica's view of live tasks reloads before its next request is
 * judged, as for a revoked key. Counting a call is one conditional UPDATE, atomic on SQLite
 * and PostgreSQL alike, so two replicas can never both spend a budget's last call.
 */
import type { Actor, AuthMethod, PrincipalKind } from "../../core/principal.js";
import type { TasksTable } from "../schema.js";
import type {
  NewTask,
  StoredTaskEndReason,
  TaskCallOutcome,
  TaskQuery,
  TaskRecord,
  TaskRepository,
} from "../taskTypes.js";
import { checkLimit, DEFAULT_LIST_LIMIT, type StoreContext } from "./context.js";

type TaskRow = Omit<TasksTable, "calls_used"> & { calls_used: number };

const ms = (value: number | string | bigint): number => Number(value);
const dateOrNull = (value: number | string | null): Date | null =>
  value === null ? null : new Date(ms(value));

function taskToRow(t: NewTask): TaskRow {
  return {
    id: t.id,
    owner_id: t.owner.id,
    owner_kind: t.owner.kind,
    owner_method: t.owner.method,
    owner_name: t.owner.name,
    owner_credential_id: t.owner.credentialId,
    owner_grant_id: t.owner.grantId ?? null,
    actor_json: t.actor === null ? null : JSON.stringify(t.actor),
    purpose: t.purpose,
    grants_json: JSON.stringify(t.grants),
    environment: t.environment,
    created_at: t.createdAt.getTime(),
    expires_at: t.expiresAt.getTime(),
    budget: t.budget,
    calls_used: 0,
    ended_at: null,
    end_reason: null,
    ended_by: null,
    client_id: t.clientId,
  };
}

function rowToTask(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    owner: {
      id: r.owner_id,
      kind: r.owner_kind as PrincipalKind,
      method: r.owner_method as AuthMethod,
      name: r.owner_name,
      credentialId: r.owner_credential_id,
      grantId: r.owner_grant_id,
    },
    actor: r.actor_json === null ? null : (JSON.parse(r.actor_json) as Actor),
    purpose: r.purpose,
    grants: JSON.parse(r.grants_json) as string[],
    environment: r.environment,
    createdAt: new Date(ms(r.created_at)),
    expiresAt: new Date(ms(r.expires_at)),
    budget: r.budget === null ? null : Number(r.budget),
    callsUsed: Number(r.calls_used),
    endedAt: dateOrNull(r.ended_at),
    endReason: r.end_reason as StoredTaskEndReason | null,
    endedBy: r.ended_by,
    clientId: r.client_id,
  };
}

export class SqlTaskRepository implements TaskRepository {
  constructor(private readonly ctx: StoreContext) {}

  async insertTask(task: NewTask): Promise<void> {
    await this.ctx.mutate(async (trx) => {
      await trx.insertInto("tasks").values(taskToRow(task)).execute();
      return true;
    });
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    const row = await this.ctx.db.selectFrom("tasks").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? undefined : rowToTask(row);
  }

  async listTasks(query: TaskQuery = {}): Promise<TaskRecord[]> {
    const limit = checkLimit("listTasks", query.limit ?? DEFAULT_LIST_LIMIT);
    let q = this.ctx.db
      .selectFrom("tasks")
      .selectAll()
      .orderBy("created_at", "desc")
      .orderBy("id")
      .limit(limit);
    if (query.live) {
      const at = (query.at ?? new Date()).getTime();
      q = q.where("ended_at", "is", null).where("expires_at", ">", at);
    }
    if (query.ownerId !== undefined) q = q.where("owner_id", "=", query.ownerId);
    return (await q.execute()).map(rowToTask);
  }

  async liveTasks(at: Date): Promise<TaskRecord[]> {
    const rows = await this.ctx.db
      .selectFrom("tasks")
      .selectAll()
      .where("ended_at", "is", null)
      .where("expires_at", ">", at.getTime())
      .execute();
    return rows.map(rowToTask);
  }

  endTask(id: string, end: { at: Date; reason: StoredTaskEndReason; by: string }): Promise<boolean> {
    return this.ctx.mutate(async (trx) => {
      const res = await trx
        .updateTable("tasks")
        .set({ ended_at: end.at.getTime(), end_reason: end.reason, ended_by: end.by })
        .where("id", "=", id)
        .where("ended_at", "is", null)
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    });
  }

  /**
   * Deletes the tasks over (ended, or expired) before `before`: their history stays in the
   * audit trail; the table holds only live tasks and recent ones. Not announced: no replica
   * holds a task that is over in its view of live tasks.
   */
  async purgeTasks(before: Date): Promise<number> {
    const at = before.getTime();
    const res = await this.ctx.db
      .deleteFrom("tasks")
      .where((eb) => eb.or([eb("expires_at", "<", at), eb("ended_at", "<", at)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async consumeTaskCall(id: string, at: Date): Promise<TaskCallOutcome> {
    const now = at.getTime();
    const counted = await this.ctx.db
      .updateTable("tasks")
      .set((eb) => ({ calls_used: eb("calls_used", "+", 1) }))
      .where("id", "=", id)
      .where("ended_at", "is", null)
      .where("expires_at", ">", now)
      .where((eb) => eb.or([eb("budget", "is", null), eb("calls_used", "<", eb.ref("budget"))]))
      .returning(["calls_used", "budget"])
      .executeTakeFirst();
    if (counted !== undefined) {
      const callsUsed = Number(counted.calls_used);
      const budget = counted.budget === null ? null : Number(counted.budget);
      const last = budget !== null && callsUsed >= budget;
      if (last) await this.endTask(id, { at, reason: "budget", by: "budget" });
      return { ok: true, callsUsed, budget, last };
    }
    const record = (await this.getTask(id)) ?? null;
    if (record === null) return { ok: false, reason: "unknown task", record };
    if (record.endedAt !== null)
      return { ok: false, reason: `task ended (${record.endReason ?? "ended"})`, record };
    if (record.expiresAt.getTime() <= now) return { ok: false, reason: "task expired", record };
    // Spent but not ended (a replica stopped between the two writes): end it now.
    await this.endTask(id, { at, reason: "budget", by: "budget" });
    return { ok: false, reason: `task's call budget of ${record.budget} is spent`, record };
  }
}
