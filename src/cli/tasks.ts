/**
 * `portcullis tasks start|list|show|end`: tasks, credentials that exist for one piece of work
 * (docs/tasks.md). `start` mints a task for an owner named as the audit trail names
 * principals (src/admin/taskOwner.ts) through the task service (src/tasks/service.ts, origin
 * `cli`): the owner's credential and the policy decide, and the task token is printed once.
 * `end` ends a task; every gateway sharing the store refuses its token from the next request
 * (the store's change feed). Every decision and end is a record on the operator CLI's audit
 * chain (the service's records, with the operator who ran the command in `detail.operator`).
 *
 * Exit codes: 0 done; 1 refused (the OAuth error, RFC 6749 §5.2, with the reason and the
 * decision id to find the record); 2 usage (a malformed flag, an owner or task that does not
 * exist).
 */
import type { Command } from "commander";
import type { Config } from "../config/schema.js";
import { actorChain } from "../core/actor.js";
import { validateScopePattern } from "../core/scope.js";
import type { Store } from "../store/types.js";
import type { TaskService } from "../tasks/service.js";
import type { Task } from "../tasks/types.js";
import { managementRecord, operatorPrincipal, recordManagement } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

/** A malformed flag or a name that designates nothing: exit 2 (main.ts treats KeyInputError so). */
async function usage(message: string): Promise<never> {
  const { KeyInputError } = await import("../authn/keyLifecycle.js");
  throw new KeyInputError(message);
}

const TTL = /^([1-9][0-9]{0,6})(s|m|h)$/;
const TTL_UNIT: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600 };

/** `--ttl`: `90s`, `15m`, `1h` → seconds; null when malformed. */
export function parseTtl(value: string): number | null {
  const m = TTL.exec(value.trim());
  return m === null ? null : Number(m[1]) * (TTL_UNIT[m[2] as string] as number);
}

/** `--budget`: a whole number of calls above 0; null when malformed. */
export function parseBudget(value: string): number | null {
  return /^[1-9][0-9]{0,8}$/.test(value.trim()) ? Number(value.trim()) : null;
}

/** `--servers`: `server` or `server:tool` entries (`*` in the tool part), as key scopes are written. */
async function parseGrants(value: string, servers: readonly string[]): Promise<string[]> {
  const grants = value
    .split(",")
    .map((g) => g.trim())
    .filter(Boolean);
  if (grants.length === 0) return usage("--servers: name at least one server or server:tool");
  for (const g of grants) {
    const problem = validateScopePattern(g);
    if (problem !== null) return usage(`--servers: ${problem}`);
    const server = g.split(":")[0] as string;
    if (server === "*") return usage("--servers: '*' is not allowed for a task: name its servers");
    if (!servers.includes(server))
      return usage(
        `--servers: '${server}' is not a configured server (configured: ${servers.join(", ") || "none"})`,
      );
  }
  return grants;
}

/** What `list`, `show` and `end` print about a task: never its token. */
function taskView(t: Task, now = Date.now()): Record<string, unknown> {
  const status = t.endedAt !== null ? "ended" : t.expiresAt.getTime() <= now ? "expired" : "live";
  return {
    id: t.id,
    status,
    owner: t.owner.id,
    ownerKind: t.owner.kind,
    ownerMethod: t.owner.method,
    actor: t.actor === null ? null : actorChain(t.actor),
    purpose: t.purpose,
    grants: [...t.grants],
    environment: t.environment,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt.toISOString(),
    budget: t.budget,
    callsUsed: t.callsUsed,
    endedAt: t.endedAt?.toISOString() ?? null,
    endReason: t.endReason,
    endedBy: t.endedBy,
    clientId: t.clientId,
  };
}

function humanTask(view: Record<string, unknown>): string {
  return Object.entries(view)
    .map(([k, v]) => `${k.padEnd(12)} ${Array.isArray(v) ? v.join(", ") : String(v ?? "-")}`)
    .join("\n");
}

interface StartOpts {
  owner: string;
  servers: string;
  ttl?: string;
  purpose: string;
  budget?: string;
  actor?: string;
  json?: boolean;
}

export function registerTaskCommands(program: Command, deps: CliDeps): void {
  const tasks = program
    .command("tasks")
    .description("tasks: short-lived credentials bound to one piece of work (start, list, show, end)");

  /** The task service over the gateway's store, as the gateway builds it (the same issuer, policy, tools). */
  const withTasks = async <T>(
    opts: Parameters<CliDeps["withStore"]>[0],
    /** Minting needs the gateway's public URL (the tokens' issuer and audiences); ending does not. */
    mints: boolean,
    fn: (ctx: { store: Store; service: TaskService; issuer: string; config: Config }) => Promise<T>,
  ): Promise<T> =>
    deps.withStore(opts, async (store, loaded) => {
      const config = loaded.config;
      const [{ gatewayBaseUrl }, { serverSecret }, { openTaskService }] = await Promise.all([
        import("./clients.js"),
        import("../authn/serverSecret.js"),
        import("../tasks/standalone.js"),
      ]);
      const issuer = gatewayBaseUrl(config) ?? (mints ? null : "<gateway URL>");
      if (issuer === null)
        return usage(
          "task tokens name the gateway's public URL, which this config leaves to the port chosen at start (listen.port: 0): set publicUrl (or a fixed listen.port) in the config",
        );
      const operator = operatorPrincipal();
      const tasks = await openTaskService(store, loaded, {
        secret: serverSecret(config, { create: true }),
        issuer,
        // The service's own records, on the operator CLI's chain, naming who ran the command.
        record: (r) => recordManagement(store, config, [{ ...r, detail: { ...r.detail, operator } }]),
      });
      try {
        return await fn({ store, service: tasks.service, issuer, config });
      } finally {
        await tasks.close();
      }
    });

  deps
    .withStoreOptions(tasks.command("start"))
    .description("create a task for an owner and print its task token (shown once)")
    .requiredOption(
      "--owner <principal>",
      "who the task acts for: key:<id>, user:<username>, client:<client id>, oauth:<issuer>#<id>, or a SPIFFE ID",
    )
    .requiredOption(
      "--servers <grants>",
      "comma-separated server or server:tool (server:prefix* too); never more than the owner may reach",
    )
    .requiredOption("--purpose <text>", "what the task is for (shown to approvers and in the audit trail)")
    .option(
      "--ttl <duration>",
      "lifetime: 90s, 15m, 1h (default tasks.defaultTtlSeconds, at most tasks.maxTtlSeconds)",
    )
    .option("--budget <calls>", "at most this many calls (default: no budget)")
    .option("--actor <id>", "the agent or workload acting for the owner (the token's RFC 8693 act claim)")
    .option("--json", "print one JSON object")
    .action(async (opts: StartOpts) => {
      const ttlSeconds = opts.ttl === undefined ? undefined : parseTtl(opts.ttl);
      if (ttlSeconds === null) return usage(`--ttl '${opts.ttl}': use a duration such as 90s, 15m or 1h`);
      const budget = opts.budget === undefined ? null : parseBudget(opts.budget);
      if (budget === null && opts.budget !== undefined)
        return usage(`--budget '${opts.budget}': a whole number of calls above 0`);
      const actor = opts.actor?.trim();
      if (actor === "") return usage("--actor: name the agent or workload (e.g. agent-7)");
      await withTasks(opts, true, async ({ store, service, issuer, config }) => {
        const grants = await parseGrants(opts.servers, Object.keys(config.servers));
        const { resolveTaskOwner } = await import("../admin/taskOwner.js");
        const resolved = await resolveTaskOwner(store, config, issuer, opts.owner);
        if (!resolved.ok) {
          // The owner's credential is dead: a refusal like the service's own, recorded.
          const refusal = {
            error: "access_denied",
            error_description: "the owner's credential is not live",
            reason: resolved.reason,
            decision_id: null,
          };
          await recordManagement(store, config, [
            managementRecord(config, "task.refused", `task refused: ${resolved.reason}`, {
              detail: { owner: opts.owner, grants, purpose: opts.purpose.slice(0, 500), origin: "cli" },
            }),
          ]);
          refuse(opts.json, refusal);
          return;
        }
        const owner = resolved.principal;
        const result = await service.mint(
          owner,
          {
            purpose: opts.purpose,
            grants,
            ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
            budget,
            actor: actor === undefined ? null : { sub: actor },
            ownerExpiresAt: owner.expiresAt,
          },
          "cli",
        );
        if (!result.ok) {
          refuse(opts.json, {
            error: result.error,
            error_description: result.description,
            reason: result.reason,
            decision_id: result.decisionId,
          });
          return;
        }
        const t = result.task;
        const out = {
          task_id: t.id,
          token: result.token,
          expires_at: t.expiresAt.toISOString(),
          owner: t.owner.id,
          grants: [...t.grants],
          purpose: t.purpose,
          budget: t.budget,
          actor: t.actor === null ? null : actorChain(t.actor),
          resources: [...new Set(t.grants.map((g) => g.split(":")[0]))].map((s) => `${issuer}/mcp/${s}`),
          decision_id: result.decisionId,
        };
        deps.print(opts.json, out, () =>
          [
            humanTask(taskView(t)),
            "",
            `use it as a bearer token at ${out.resources.join(", ")}`,
            "task token (shown once, store it now):",
            result.token,
          ].join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(tasks.command("list"))
    .description("list live tasks (--all: ended and expired too)")
    .option("-a, --all", "include ended and expired tasks")
    .option("--owner <principal id>", "only the tasks of this owner (e.g. key:4fT0qk2LxW9a)")
    .option("--json", "print a JSON array")
    .action(async (opts: { all?: boolean; owner?: string; json?: boolean }) => {
      await deps.withStore(opts, async (store) => {
        const now = new Date();
        const list = (
          await store.listTasks({
            ...(opts.all ? {} : { live: true, at: now }),
            ...(opts.owner === undefined ? {} : { ownerId: opts.owner }),
            limit: 1000,
          })
        ).map((t) => taskView(t, now.getTime()));
        deps.print(opts.json, list, () =>
          table(
            list,
            ["id", "status", "owner", "actor", "grants", "expiresAt", "callsUsed", "budget", "purpose"],
            opts.all ? "(no tasks)" : "(no live tasks)",
          ),
        );
      });
    });

  deps
    .withStoreOptions(tasks.command("show"))
    .description("show one task (never its token)")
    .argument("<id>", "task id")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store) => {
        const t = await store.getTask(id);
        if (t === undefined) return usage(`no task with id ${id}`);
        const view = taskView(t);
        deps.print(opts.json, view, () => humanTask(view));
      });
    });

  deps
    .withStoreOptions(tasks.command("end"))
    .description("end a task: every gateway refuses its token from the next request")
    .argument("<id>", "task id")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: { json?: boolean }) => {
      await withTasks(opts, false, async ({ store, service }) => {
        const before = await store.getTask(id);
        if (before === undefined) return usage(`no task with id ${id}`);
        const ended = await service.end(id, "ended", operatorPrincipal());
        const t = (await store.getTask(id)) ?? before;
        const view = { ...taskView(t), alreadyEnded: !ended };
        deps.print(opts.json, view, () =>
          ended
            ? `ended ${id} at ${t.endedAt?.toISOString()}: its token is refused from the next request`
            : `${id} had already ended (${t.endReason ?? "expired"}${t.endedAt ? ` at ${t.endedAt.toISOString()}` : ""})`,
        );
      });
    });
}

/** A refusal: the OAuth error (RFC 6749 §5.2) and the reason, exit 1. */
function refuse(
  json: boolean | undefined,
  r: { error: string; error_description: string; reason: string; decision_id: string | null },
): void {
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
  process.stderr.write(
    `portcullis: task refused: ${r.error}: ${r.error_description} (${r.reason}${r.decision_id ? `; decision ${r.decision_id}` : ""})\n`,
  );
  process.exitCode = 1;
}
