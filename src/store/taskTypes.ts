/**
 * Tasks as the store keeps them (migration 011, table `tasks`): the record src/tasks/ reads
 * and writes through {@link TaskRepository}. The domain's own types are src/tasks/types.ts;
 * these have the same shape, declared here because the store imports nothing above it.
 */
import type { Actor, AuthMethod, PrincipalKind } from "../core/principal.js";

/** Why a task ended (src/tasks/types.ts `TaskEndReason`). */
export type StoredTaskEndReason = "ended" | "revoked" | "expired" | "budget" | "owner_revoked";

export interface StoredTaskOwner {
  id: string;
  kind: PrincipalKind;
  method: AuthMethod;
  name: string;
  credentialId: string | null;
  /** An OAuth owner's grant at the built-in authorization server, when it had one. */
  grantId?: string | null;
}

export interface TaskRecord {
  id: string;
  owner: StoredTaskOwner;
  actor: Actor | null;
  purpose: string;
  grants: readonly string[];
  environment: string;
  createdAt: Date;
  expiresAt: Date;
  budget: number | null;
  callsUsed: number;
  endedAt: Date | null;
  endReason: StoredTaskEndReason | null;
  endedBy: string | null;
  clientId: string | null;
}

export type NewTask = Omit<TaskRecord, "callsUsed" | "endedAt" | "endReason" | "endedBy">;

/** What one call against a task's budget did (see {@link TaskRepository.consumeTaskCall}). */
export type TaskCallOutcome =
  /** Counted: `callsUsed` now, of `budget` (null: no budget); `last` when it was the last one. */
  | { ok: true; callsUsed: number; budget: number | null; last: boolean }
  /** Not counted: the task is unknown, ended, expired or its budget is spent. */
  | { ok: false; reason: string; record: TaskRecord | null };

export interface TaskQuery {
  /** Only tasks not ended and not expired at `at` (default now). */
  live?: boolean;
  at?: Date;
  ownerId?: string;
  limit?: number;
}

/**
 * Tasks (migration 011). Every change to a task's liveness (created, ended) is announced on
 * the store's change feed, so every replica's view of live tasks follows it from its next
 * request; counting a call is a single conditional UPDATE (not announced: the count only ends
 * the task, announced, when the budget is spent).
 */
export interface TaskRepository {
  insertTask(task: NewTask): Promise<void>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /** Newest first; at most `limit` (default 100). */
  listTasks(query?: TaskQuery): Promise<TaskRecord[]>;
  /** Every task live at `at`, for a replica's in-memory view (bounded by the tasks' lifetimes). */
  liveTasks(at: Date): Promise<TaskRecord[]>;
  /** Ends a task not yet ended; true only for the call that ended it. Announced. */
  endTask(id: string, end: { at: Date; reason: StoredTaskEndReason; by: string }): Promise<boolean>;
  /**
   * Counts one call, atomically across replicas: only while the task is not ended, not
   * expired at `at` and under its budget. The call that spends the budget's last unit ends the
   * task (reason `budget`, announced).
   */
  consumeTaskCall(id: string, at: Date): Promise<TaskCallOutcome>;
  /** Deletes the tasks ended or expired before `before` (retention); returns how many. */
  purgeTasks(before: Date): Promise<number>;
}
