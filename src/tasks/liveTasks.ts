/**
 * A replica's in-memory view of the live tasks: a FeedCache (src/store/feedCache.ts) over
 * `tasks` rows not ended and not expired, reloaded whenever the store's change feed reports a
 * change made anywhere (a task created or ended on another replica, by the CLI, the console or
 * token revocation; a key, grant or machine client revoked). The request that notices the
 * change waits for the reload, so an ended task's token is refused from the next request, as a
 * revoked key is. Each reload also judges the OAuth owners of the live tasks in one batch
 * (./oauthOwners.ts). While the feed cannot observe changes the view is unhealthy and every
 * task token is refused (fail closed).
 */
import { FeedCache } from "../store/feedCache.js";
import type { Store, TaskRecord } from "../store/types.js";
import type { DeadOwners } from "./oauthOwners.js";

interface View {
  tasks: Map<string, TaskRecord>;
  /** Task id → why its owner's credential is no longer live. */
  deadOwners: Map<string, string>;
}

export class LiveTasks {
  private readonly view: FeedCache<View>;

  constructor(
    private readonly store: Store,
    private readonly judgeOwners: DeadOwners | null = null,
  ) {
    this.view = new FeedCache<View>(
      store,
      { tasks: new Map(), deadOwners: new Map() },
      {
        load: async () => {
          const at = new Date();
          const live = await store.liveTasks(at);
          const deadOwners = judgeOwners === null ? new Map() : await judgeOwners(live, at.getTime());
          return { tasks: new Map(live.map((t) => [t.id, t])), deadOwners };
        },
      },
    );
  }

  start(): Promise<void> {
    return this.view.start();
  }

  close(): Promise<void> {
    return this.view.close();
  }

  healthy(): boolean {
    return this.view.healthy();
  }

  /** Undefined in the steady state; a promise while a reported change is being loaded. */
  refresh(): Promise<void> | undefined {
    return this.view.refresh();
  }

  /** The task as last loaded, if it was live then. Call refresh() first. */
  get(id: string): TaskRecord | undefined {
    return this.view.value.tasks.get(id);
  }

  /** Why the task's OAuth owner is no longer live, as last judged; undefined when live or not judged. */
  ownerDeath(id: string): string | undefined {
    return this.view.value.deadOwners.get(id);
  }

  /**
   * Reads one task from the store (a task created elsewhere whose announcement is still on its
   * way), with its OAuth owner judged as a reload would.
   */
  async read(id: string): Promise<TaskRecord | undefined> {
    const task = await this.store.getTask(id);
    if (task !== undefined && this.judgeOwners !== null) {
      const dead = await this.judgeOwners([task], Date.now());
      const why = dead.get(id);
      // An owner's death is final: remembering it cannot resurrect anything.
      if (why !== undefined) this.view.value.deadOwners.set(id, why);
    }
    return task;
  }

  /** Moves this replica's count of a task's calls (what policy reads as remaining calls). */
  noteCalls(id: string, callsUsed: number): void {
    const t = this.view.value.tasks.get(id);
    if (t !== undefined && callsUsed > t.callsUsed) this.view.value.tasks.set(id, { ...t, callsUsed });
  }
}
