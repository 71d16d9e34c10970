/**
 * How an audit record names a task and the actor acting for its owner: `detail.task` (the
 * task id) and `detail.actor` (the RFC 8693 §4.1 `act` chain, outermost actor first). Both
 * sit in `detail`, which the hash chain covers (./chain.ts), so they are as tamper-evident as
 * the rest of the record; the `task_id` column (migration 013) is only an index derived from
 * `detail.task` when the record is stored (src/store/rows.ts), and `portcullis audit verify`
 * checks that the index still agrees with the hashed detail.
 *
 * Every record about a task carries `detail.task`: each request made with its token (built
 * in ./requestRecord.ts from the Principal), its creation and its end, so one indexed lookup
 * returns its whole history.
 */
import { actorChain, MAX_ACTOR_CHAIN } from "../core/actor.js";
import type { Actor, Principal } from "../core/principal.js";

/** The detail fields naming a task and its actor. */
export interface TaskDetail {
  task?: string;
  actor?: readonly string[];
}

/** `detail.task` / `detail.actor` for a task id and actor. */
export function taskDetail(taskId: string | null | undefined, actor: Actor | null | undefined): TaskDetail {
  const out: { task?: string; actor?: readonly string[] } = {};
  if (taskId !== null && taskId !== undefined) out.task = taskId;
  if (actor !== null && actor !== undefined) out.actor = actorChain(actor);
  return out;
}

/** A request record's detail, with the principal's task and actor when it has them (on every call: no spreads). */
export function withTaskDetail(
  detail: Record<string, unknown> | null,
  principal: Pick<Principal, "task" | "actor">,
): Record<string, unknown> | null {
  const { task, actor } = principal;
  if (task === undefined && actor === undefined) return detail;
  const out: Record<string, unknown> = detail === null ? {} : Object.assign({}, detail);
  if (task !== undefined) out.task = task.id;
  if (actor !== undefined) out.actor = actorChain(actor);
  return out;
}

/**
 * The task and actor a stored record names (for display), or nulls. The actor is read as a
 * chain of subjects (request records) or as an RFC 8693 actor object, as a task's creation
 * record keeps it (`{ sub, act: { sub } }`).
 */
export function recordTask(detail: Record<string, unknown> | null): {
  taskId: string | null;
  actor: string[] | null;
} {
  const task = detail?.task;
  return { taskId: typeof task === "string" ? task : null, actor: actorOf(detail?.actor) };
}

function actorOf(actor: unknown): string[] | null {
  if (Array.isArray(actor)) return actor.every((a) => typeof a === "string") ? (actor as string[]) : null;
  const chain: string[] = [];
  for (let a: unknown = actor; a !== null && typeof a === "object" && chain.length < MAX_ACTOR_CHAIN; ) {
    const { sub, act } = a as { sub?: unknown; act?: unknown };
    if (typeof sub !== "string") break;
    chain.push(sub);
    a = act;
  }
  return chain.length === 0 ? null : chain;
}
