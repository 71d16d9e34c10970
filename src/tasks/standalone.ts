/**
 * A TaskService outside a running gateway: what `portcullis tasks start|end` (src/cli/) and
 * tests use. It reads what the gateway reads — the store's signing keys, the configured policy
 * (or the default pack), the tool catalogue's pins and the operator's tier pins — and audits
 * through the `record` the caller gives (the CLI: the operator chain, committed before the
 * command returns). The issuer must be the gateway's public base URL (`publicUrl`, or the
 * configured host and port): a token with another `iss` is refused by the gateway.
 */

import { loadPolicyFiles } from "../authz/policy/compile.js";
import { configuredPolicyPaths } from "../authz/policy/defaultPack.js";
import { ToolCatalogue } from "../authz/toolCatalogue.js";
import { publicBaseUrl } from "../config/derived.js";
import type { LoadedConfig } from "../config/load.js";
import type { AuditRecord, Store } from "../store/types.js";
import { TaskService } from "./service.js";

export interface StandaloneTasks {
  service: TaskService;
  close(): Promise<void>;
}

export async function openTaskService(
  store: Store,
  loaded: LoadedConfig,
  opts: {
    secret: Buffer;
    record: (record: AuditRecord) => void | Promise<void>;
    /** Default: the configured public URL, or `http://<listen.host>:<listen.port>`. */
    issuer?: string;
  },
): Promise<StandaloneTasks> {
  const { config } = loaded;
  const policy = loadPolicyFiles(configuredPolicyPaths(config.policy.paths, loaded.source));
  const catalogue = await ToolCatalogue.open(store, {
    operatorTiers: Object.fromEntries(Object.entries(config.servers).map(([name, s]) => [name, s.tools])),
  });
  try {
    const service = await TaskService.open(store, opts.secret, {
      config: config.tasks,
      environment: config.environment,
      issuer: opts.issuer ?? publicBaseUrl(config, config.listen.port),
      servers: Object.keys(config.servers),
      policy: () => policy,
      tools: catalogue,
      record: opts.record,
    });
    return { service, close: () => catalogue.close() };
  } catch (err) {
    await catalogue.close();
    throw err;
  }
}
