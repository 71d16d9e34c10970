/**
 * Tasks in a running gateway: the service (mint, end), the live-task view that follows the
 * store's change feed, the task-token verifier the authenticate stage routes task tokens to,
 * and the budget counter the `task scope` stage charges. Built once at startup
 * (src/gateway.ts); the built-in authorization server receives `service`.
 */
import type { Keyring } from "../authn/keyring.js";
import type { ToolFactsSource } from "../authz/authorize.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import type { TasksConfig } from "../config/schema.js";
import type { AuditRecord, Store, TaskCallOutcome } from "../store/types.js";
import { LiveTasks } from "./liveTasks.js";
import { oauthOwnerLiveness } from "./oauthOwners.js";
import { keyOwnerCheck, type OwnerCheck } from "./owners.js";
import { TaskService } from "./service.js";
import { TaskKeys } from "./taskToken.js";
import { TaskTokenVerifier } from "./verifier.js";

const PURGE_INTERVAL_MS = 3_600_000;

/** What the request path needs to charge a task's call budget. */
export interface TaskCalls {
  /** Counts one call (atomic across replicas); refused when the task is over or its budget spent. */
  consume(taskId: string): Promise<TaskCallOutcome>;
}

export interface TaskRuntime {
  service: TaskService;
  verifier: TaskTokenVerifier;
  calls: TaskCalls;
  close(): Promise<void>;
}

export interface TaskRuntimeOptions {
  store: Store;
  secret: Buffer;
  config: TasksConfig;
  environment: string;
  issuer: string;
  servers: readonly string[];
  policy: () => CompiledPolicy;
  tools: ToolFactsSource;
  keyring: Pick<Keyring, "keyStatus">;
  record: (record: AuditRecord) => void | Promise<void>;
  /** Judges of owners other than API keys, tasks and the built-in authorization server's OAuth owners. */
  ownerChecks?: readonly OwnerCheck[];
  /**
   * Whether OAuth owners are the built-in authorization server's (its grants and machine
   * clients are then checked on every change-feed reload, ./oauthOwners.ts).
   */
  builtinOAuth?: boolean;
}

export async function startTasks(opts: TaskRuntimeOptions): Promise<TaskRuntime> {
  const keys = await TaskKeys.load(opts.store, opts.secret);
  const service = new TaskService({
    store: opts.store,
    keys,
    config: opts.config,
    environment: opts.environment,
    issuer: opts.issuer,
    servers: opts.servers,
    policy: opts.policy,
    tools: opts.tools,
    record: opts.record,
  });
  const live = new LiveTasks(
    opts.store,
    opts.builtinOAuth === true ? oauthOwnerLiveness(opts.store, opts.secret, opts.issuer) : null,
  );
  await live.start();
  const verifier = new TaskTokenVerifier({
    issuer: opts.issuer,
    environment: opts.environment,
    keys,
    live,
    ownerChecks: [keyOwnerCheck(opts.keyring), ...(opts.ownerChecks ?? [])],
    onOwnerDead: (id, why) => service.endForOwner(id, why),
  });
  const calls: TaskCalls = {
    consume: async (taskId) => {
      const outcome = await service.consumeCall(taskId);
      if (outcome.ok) live.noteCalls(taskId, outcome.callsUsed);
      return outcome;
    },
  };
  // Tasks that are over leave the store after tasks.retentionDays (their audit records stay),
  // so the table does not grow with every exchange: once at start, then hourly.
  const purge = (): void => {
    const before = new Date(Date.now() - opts.config.retentionDays * 86_400_000);
    opts.store.purgeTasks(before).catch(() => undefined); // retried within the hour
  };
  purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
  purgeTimer.unref();
  return {
    service,
    verifier,
    calls,
    close: () => {
      clearInterval(purgeTimer);
      return live.close();
    },
  };
}
