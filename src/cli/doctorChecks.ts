/**
 * The local checks of `portcullis doctor` (Node, environment, store, secret files), each a
 * small function returning lines of ok / warn / fail with what to do about it; the checks that
 * ask something over the network are in ./doctorProbes.ts. Nothing here changes anything: the
 * store is read without being migrated.
 */
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { LoadedConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { migrationStatus } from "../store/migrationStatus.js";
import { isPostgresSpec } from "../store/open.js";

export type CheckStatus = "ok" | "warn" | "fail";

export interface Check {
  /** Stable name of what was checked, e.g. `store`, `upstream:github`. */
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

export const ok = (check: string, detail: string): Check => ({ check, status: "ok", detail });
export const warn = (check: string, detail: string, fix: string): Check => ({
  check,
  status: "warn",
  detail,
  fix,
});
export const fail = (check: string, detail: string, fix: string): Check => ({
  check,
  status: "fail",
  detail,
  fix,
});

/** The error's message, with its cause's (fetch says only "fetch failed"). */
export function message(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return cause ? `${err.message}: ${typeof code === "string" ? code : cause.message}` : err.message;
}

/** Node 20 reaches end of life in April 2026 (nodejs.org/en/about/previous-releases). */
export function checkNode(version = process.versions.node): Check {
  const major = Number(version.split(".")[0]);
  if (major < 20)
    return fail("node", `Node ${version}`, "Portcullis needs Node 20 or later: install Node 22 or 24");
  if (major === 20)
    return warn("node", `Node ${version} (end of life April 2026)`, "upgrade to Node 22 or 24 (LTS)");
  return ok("node", `Node ${version}`);
}

/** What the schema cannot say alone: a gateway reachable from elsewhere, a plain-http public URL. */
export function checkEnvironment(config: Config): Check {
  const loopback = ["127.0.0.1", "::1", "localhost"].includes(config.listen.host);
  if (config.environment !== "dev" && config.publicUrl?.startsWith("http:"))
    return warn(
      "environment",
      `${config.environment}: publicUrl ${config.publicUrl} is plain http`,
      "serve the gateway behind TLS and set publicUrl to its https address",
    );
  if (!loopback && config.publicUrl === undefined)
    return warn(
      "environment",
      `${config.environment}: listening on ${config.listen.host} without publicUrl`,
      "set publicUrl to the address clients use (OAuth metadata and Host checks are built from it)",
    );
  return ok("environment", `${config.environment}, listening on ${config.listen.host}:${config.listen.port}`);
}

function redactUrl(spec: string): string {
  if (!isPostgresSpec(spec)) return spec;
  const u = new URL(spec);
  if (u.password) u.password = "***";
  return u.toString();
}

/** Reachable, and its schema neither behind (pending migrations) nor ahead (a newer build's). */
export async function checkStore(
  loaded: LoadedConfig,
): Promise<{ checks: Check[]; clock?: { store: Date; local: Date } }> {
  const where = redactUrl(loaded.storeSpec);
  try {
    const status = await migrationStatus(loaded.storeSpec);
    if (!status.exists)
      return {
        checks: [
          warn(
            "store",
            `no store yet at ${where}`,
            "run `portcullis init` or `portcullis start` once: it creates the store",
          ),
        ],
      };
    const checks = [ok("store", `reachable: ${where}`)];
    if (status.unknown.length > 0)
      checks.push(
        fail(
          "store.migrations",
          `the store has migrations this build does not know: ${status.unknown.join(", ")}`,
          "run the Portcullis version that migrated this store (or newer)",
        ),
      );
    else if (status.pending.length > 0)
      checks.push(
        warn(
          "store.migrations",
          `${status.pending.length} migration(s) pending: ${status.pending.join(", ")}`,
          "`portcullis start` applies them (back the store up first)",
        ),
      );
    else checks.push(ok("store.migrations", "schema current"));
    return status.clock ? { checks, clock: status.clock } : { checks };
  } catch (err) {
    return {
      checks: [
        fail(
          "store",
          `unreachable: ${where}: ${message(err)}`,
          "check the store setting, that the database is up and the credentials",
        ),
      ],
    };
  }
}

type SecretLocation = { field: string; file?: string; env?: string };

function asReference(value: unknown, field: string): SecretLocation[] {
  if (value === null || typeof value !== "object") return [];
  const ref = value as { file?: unknown; env?: unknown };
  if (Object.keys(ref).length !== 1) return [];
  if (typeof ref.file === "string") return [{ field, file: ref.file }];
  if (typeof ref.env === "string") return [{ field, env: ref.env }];
  return [];
}

/**
 * Every `{ file }` and `{ env }` secret reference in the config, with the field that holds it.
 * A server's `env` and `headers` are maps of names chosen by the operator: only their values
 * can be references (a variable named `file` is not one).
 */
export function secretReferences(value: unknown, path = ""): SecretLocation[] {
  if (value === null || typeof value !== "object") return [];
  if (/^servers\.[^.]+\.(env|headers)$/.test(path))
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      asReference(v, `${path}.${k}`),
    );
  const ref = asReference(value, path);
  if (ref.length > 0) return ref;
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
    secretReferences(v, path === "" ? k : `${path}.${k}`),
  );
}

function fileMode(check: string, file: string, field: string): Check {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    return fail(
      check,
      `${field}: cannot read ${file}: ${message(err)}`,
      "create the file or fix the path in the config",
    );
  }
  const octal = (mode & 0o777).toString(8).padStart(3, "0");
  if ((mode & 0o077) !== 0)
    return warn(
      check,
      `${field}: ${file} is readable by ${mode & 0o007 ? "every user" : "its group"} (mode ${octal})`,
      `chmod 600 ${file}`,
    );
  return ok(check, `${field}: ${file} (mode ${octal})`);
}

/** The server secret and every secret file the config names: present and readable by the owner only; variables set. */
export function checkSecrets(config: Config): Check[] {
  const checks: Check[] = [];
  if (config.serverSecret === undefined) {
    const file = join(config.dataDir, "server-secret");
    checks.push(
      existsSync(file)
        ? fileMode("secret:server", file, "server secret")
        : warn(
            "secret:server",
            `no server secret yet at ${file}`,
            "`portcullis init` or the first `portcullis start` creates it",
          ),
    );
  }
  for (const ref of secretReferences(config)) {
    if (ref.file !== undefined) checks.push(fileMode(`secret:${ref.field}`, resolve(ref.file), ref.field));
    else if (ref.env !== undefined)
      checks.push(
        process.env[ref.env]
          ? ok(`secret:${ref.field}`, `${ref.field}: ${ref.env} is set`)
          : warn(
              `secret:${ref.field}`,
              `${ref.field}: environment variable ${ref.env} is not set here`,
              `set ${ref.env} in the gateway's environment (it refuses to start without it)`,
            ),
      );
  }
  return checks;
}
