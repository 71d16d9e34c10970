/**
 * Live tasks as an administrator sees them (src/tasks/): owner, actor chain (RFC 8693 §4.1
 * `act`, outermost first), purpose, grants, expiry and calls used against the budget; and
 * ending one, which the task service records and announces (every replica refuses the task's
 * token from its next request). The face that ends it (the console) reports the action through
 * its own audit callback, so the change never goes unrecorded there either.
 */
import type { Actor } from "../core/principal.js";
import type { Task, TaskEnder } from "../tasks/types.js";

/** What the admin layer needs of the task service. */
export interface TaskAdministration extends TaskEnder {
  list(query: { live?: boolean; limit?: number }): Promise<Task[]>;
}

export interface TaskView {
  id: string;
  ownerId: string;
  ownerName: string;
  ownerMethod: string;
  /** Outermost (current) actor first. */
  actors: string[];
  purpose: string;
  grants: readonly string[];
  createdAt: string;
  expiresAt: string;
  callsUsed: number;
  budget: number | null;
  clientId: string | null;
}

/** The most tasks a list shows. */
export const TASK_LIST_LIMIT = 200;

function chain(actor: Actor | null): string[] {
  const out: string[] = [];
  for (let a: Actor | undefined = actor ?? undefined; a !== undefined; a = a.act) out.push(a.sub);
  return out;
}

export function taskView(task: Task): TaskView {
  return {
    id: task.id,
    ownerId: task.owner.id,
    ownerName: task.owner.name,
    ownerMethod: task.owner.method,
    actors: chain(task.actor),
    purpose: task.purpose,
    grants: task.grants,
    createdAt: task.createdAt.toISOString(),
    expiresAt: task.expiresAt.toISOString(),
    callsUsed: task.callsUsed,
    budget: task.budget,
    clientId: task.clientId,
  };
}

/** Tasks neither ended nor expired, newest first. */
export async function liveTaskViews(tasks: TaskAdministration): Promise<TaskView[]> {
  return (await tasks.list({ live: true, limit: TASK_LIST_LIMIT })).map(taskView);
}

export interface TaskEndedAction {
  kind: "task.ended";
  taskId: string;
  by: string;
}

/**
 * Ends a live task (reason `ended`, by `by`); false when no such live task. Reported through
 * `audit` only when this call ended it.
 */
export async function endTask(
  tasks: TaskEnder,
  request: { id: string; by: string },
  audit: (action: TaskEndedAction) => Promise<void>,
): Promise<boolean> {
  const ended = await tasks.end(request.id, "ended", request.by);
  if (ended) await audit({ kind: "task.ended", taskId: request.id, by: request.by });
  return ended;
}
