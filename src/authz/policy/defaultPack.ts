/**
 * Where the built-in default policy pack lives: `policies/default` at the package root,
 * shipped as ordinary files so an operator can read, copy and edit them.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "portcullis"
    )
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the portcullis package root (policies/default)");
    dir = parent;
  }
}

export const DEFAULT_POLICY_PACK = join(packageRoot(), "policies", "default");

/**
 * The policy files a configuration names (`policy.paths`, relative to the config file's
 * directory), or the default pack when it names none.
 */
export function configuredPolicyPaths(
  paths: readonly string[] | undefined,
  configFile: string | null,
): string[] {
  if (paths === undefined) return [DEFAULT_POLICY_PACK];
  const base = configFile === null ? process.cwd() : dirname(resolve(configFile));
  return paths.map((p) => resolve(base, p));
}
