/**
 * Creating and ending tasks for a running test gateway, the way `portcullis tasks start|end`
 * does: the compiled TaskService (src/tasks/standalone.ts) over the gateway's own store, its
 * config (policy, servers, tasks limits) and server secret, audited on the operator CLI's
 * chain. The issuer is the gateway's URL (its public base URL).
 */

import { serverSecret } from "../../src/authn/serverSecret.js";
import { recordManagement } from "../../src/cli/auditTrail.js";
import { loadConfig } from "../../src/config/load.js";
import type { Principal } from "../../src/core/principal.js";
import { openStore } from "../../src/store/open.js";
import { keyOwnerPrincipal } from "../../src/tasks/owners.js";
import type { TaskService } from "../../src/tasks/service.js";
import { openTaskService } from "../../src/tasks/standalone.js";
import type { MintResult, TaskEndReason, TaskRequest } from "../../src/tasks/types.js";
import type { RunningGateway } from "./gateway.js";

type GatewayRef = Pick<RunningGateway, "configFile" | "url">;

/** Runs `fn` with the gateway's TaskService; `env` holds what the config's secret references read. */
export async function withTasks<T>(
  gw: GatewayRef,
  fn: (service: TaskService, owner: (id: string) => Promise<Principal>) => Promise<T>,
  env: Record<string, string> = {},
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const loaded = loadConfig({ config: gw.configFile });
    const store = await openStore(loaded.storeSpec);
    try {
      const tasks = await openTaskService(store, loaded, {
        secret: serverSecret(loaded.config, { create: false }),
        issuer: gw.url,
        record: (r) => recordManagement(store, loaded.config, [r]),
      });
      try {
        return await fn(tasks.service, async (id) => {
          const found = await keyOwnerPrincipal(store, id);
          if (found === null) throw new Error(`no owner ${id}`);
          return found.principal;
        });
      } finally {
        await tasks.close();
      }
    } finally {
      await store.close();
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A task owned by the API key `keyId`; throws when refused. */
export async function startTask(
  gw: GatewayRef,
  keyId: string,
  request: TaskRequest,
  env: Record<string, string> = {},
): Promise<Extract<MintResult, { ok: true }>> {
  const result = await mintTask(gw, keyId, request, env);
  if (!result.ok) throw new Error(`task refused: ${result.error}: ${result.reason}`);
  return result;
}

export function mintTask(
  gw: GatewayRef,
  keyId: string,
  request: TaskRequest,
  env: Record<string, string> = {},
): Promise<MintResult> {
  return withTasks(
    gw,
    async (service, owner) => service.mint(await owner(`key:${keyId}`), request, "cli"),
    env,
  );
}

export function endTask(
  gw: GatewayRef,
  taskId: string,
  reason: TaskEndReason = "ended",
  env: Record<string, string> = {},
): Promise<boolean> {
  return withTasks(gw, (service) => service.end(taskId, reason, "operator:test"), env);
}
