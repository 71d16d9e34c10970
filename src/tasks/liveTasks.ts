/**
 * A replica's in-memory view of the live tasks: a FeedCache (src/store/feedCache.ts) over
 * `tasks` rows not ended and not expired, reloaded whenever the store's change feed reports a
 * change made anywhere (a task created or ended on another replica, by the CLI, the console or
 * token revocation). The request that notices the change waits for the reload, so an ended
 * task's token is refused from the next request, as a revoked key is. While the feed cannot
 * observe changes the view is unhealthy and every task token is refused (fail closed).
 */
import { FeedCache } from "../store/feedCache.js";
import type { Store, TaskRecord } from "../store/types.js";

export class LiveTasks {
  private readonly view: FeedCache<Map<string, TaskRecord>>;

  constructor(private readonly store: Store) {
    this.view = new FeedCache(store, new Map(), {
      load: async () => new Map((await store.liveTasks(new Date())).map((t) => [t.id, t])),
    });
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
    return this.view.value.get(id);
  }

  /** Reads one task from the store: a task created elsewhere whose announcement is still on its way. */
  read(id: string): Promise<TaskRecord | undefined> {
    return this.store.getTask(id);
  }

  /** Moves this replica's count of a task's calls (what policy reads as remaining calls). */
  noteCalls(id: string, callsUsed: number): void {
    const t = this.view.value.get(id);
    if (t !== undefined && callsUsed > t.callsUsed) this.view.value.set(id, { ...t, callsUsed });
  }
}
