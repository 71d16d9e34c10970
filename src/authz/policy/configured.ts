/**
 * The policy in force for a running gateway: the configured files (or the default pack),
 * compiled at startup (a policy that does not compile stops startup, as a config error) and
 * watched (a change that compiles replaces it; one that does not is refused, logged and
 * counted, and the previous policy stays in force).
 */
import type { Logger } from "pino";
import { ConfigError, type LoadedConfig } from "../../config/load.js";
import type { Metrics } from "../../telemetry/metrics.js";
import { configuredPolicyPaths } from "./defaultPack.js";
import { type CompiledPolicy, PolicyError } from "./types.js";
import { PolicyWatcher } from "./watch.js";

export function watchConfiguredPolicy(
  loaded: LoadedConfig,
  metrics: Pick<Metrics, "policyValid" | "policyReloadErrors">,
  log: Logger,
  /** A new policy is in force (the gateway audits it). */
  onChange: (next: CompiledPolicy) => void,
): PolicyWatcher {
  let watcher: PolicyWatcher;
  try {
    watcher = new PolicyWatcher(configuredPolicyPaths(loaded.config.policy.paths, loaded.source), {
      // A file reverted to the policy in force compiles again without a new version.
      onValid: () => metrics.policyValid.set(1),
      onReload: (next) => {
        onChange(next);
        log.info(
          { event: "policy.reloaded", version: next.version, rules: next.ruleCount },
          "policy reloaded",
        );
      },
      onError: (err) => {
        metrics.policyValid.set(0);
        metrics.policyReloadErrors.inc();
        log.error(
          { event: "policy.reload_refused", file: err.file, line: err.line, detail: err.detail },
          `policy change refused, the previous policy stays in force: ${err.message}`,
        );
      },
    });
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(`policy: ${err.message}`);
    throw err;
  }
  metrics.policyValid.set(1);
  return watcher;
}
