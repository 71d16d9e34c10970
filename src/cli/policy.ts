import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import type { Case } from "../authz/policy/caseFormat.js";
import {
  buildInput,
  type ExplainOpts,
  explainCase,
  type PinnedTools,
  PolicyInputError,
  readCases,
  shown,
  TIERS,
} from "../authz/policy/cases.js";
import { loadPolicyFiles } from "../authz/policy/compile.js";
import { configuredPolicyPaths } from "../authz/policy/defaultPack.js";
import { type CompiledPolicy, PolicyError } from "../authz/policy/types.js";
import { type LoadedConfig, loadConfig } from "../config/load.js";
import { isPostgresSpec } from "../store/open.js";
import type { ToolPinRecord } from "../store/types.js";
import type { CliDeps } from "./commandDeps.js";
import {
  auditView,
  decisionLine,
  describePrincipal,
  describeRequest,
  describeTask,
  humanAudit,
  traceLines,
} from "./policyOutput.js";

interface ConfigOpts {
  config?: string;
  dataDir?: string;
  store?: string;
  json?: boolean;
}

// ---------------------------------------------------------------------------------------
// Loading.

function loadConfigFor(opts: ConfigOpts): LoadedConfig {
  return loadConfig({ config: opts.config, dataDir: opts.dataDir, store: opts.store });
}

interface LoadedPolicy {
  policy: CompiledPolicy;
  /** What was compiled: "arguments" (paths given), "config" (policy.paths) or "default pack". */
  from: string;
}

function loadPolicy(explicit: readonly string[] | undefined, loaded: LoadedConfig): LoadedPolicy {
  if (explicit !== undefined && explicit.length > 0) {
    return { policy: loadPolicyFiles(explicit.map((p) => resolve(p))), from: "arguments" };
  }
  const paths = configuredPolicyPaths(loaded.config.policy.paths, loaded.source);
  const from = loaded.config.policy.paths === undefined ? "default pack" : `policy.paths in ${loaded.source}`;
  return { policy: loadPolicyFiles(paths), from };
}

function policyView(p: LoadedPolicy): Record<string, unknown> {
  return {
    version: p.policy.version,
    ruleCount: p.policy.ruleCount,
    files: [...p.policy.sources],
    from: p.from,
  };
}

/**
 * Runs a command; a policy that does not compile is reported as `file:line: message` and
 * exits 2 (with --json, also `{"error":"policy","message","file","line"}` on stdout).
 */
async function reportingPolicyErrors(json: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    const message = `${shown(err.file)}:${err.line}: ${err.detail}`;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ error: "policy", message, file: err.file, line: err.line, detail: err.detail })}\n`,
      );
    }
    process.stderr.write(`portcullis: ${message}\n`);
    process.exitCode = 2;
  }
}

// ---------------------------------------------------------------------------------------
// Output.

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  const sa = [...new Set(a)].sort();
  const sb = [...new Set(b)].sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

function ids(list: readonly string[]): string {
  return list.length === 0 ? "none" : list.join(", ");
}

/**
 * The store's pin of the one tool `explain` asks about, so that it decides with the tier the
 * gateway uses. Not read when the tier or annotations are given, or for other methods; a
 * SQLite store that does not exist yet is not created (no pins: the gateway never ran here).
 */
async function pinnedToolOf(
  c: Case,
  opts: ConfigOpts,
  loaded: LoadedConfig,
  deps: CliDeps,
): Promise<{ lookup: PinnedTools | undefined; note: string | null }> {
  const r = c.request;
  if (
    r.method !== "tools/call" ||
    r.tool === undefined ||
    r.tier !== undefined ||
    r.annotations !== undefined
  ) {
    return { lookup: undefined, note: null };
  }
  if (!isPostgresSpec(loaded.storeSpec) && !existsSync(loaded.storeSpec)) {
    return { lookup: undefined, note: `no store at ${loaded.storeSpec}: no pinned tools to read` };
  }
  const tool = r.tool;
  const record: ToolPinRecord | undefined = await deps.withStore(opts, (store) =>
    store.getToolPin(r.server, tool),
  );
  return {
    lookup: (server, name) =>
      record !== undefined && server === r.server && name === tool ? record : undefined,
    note:
      record === undefined
        ? `the store has no pin for ${r.server}/${tool} (the gateway has not listed it)`
        : `pin ${record.status}, ${record.currentHash.slice(0, 12)}`,
  };
}

// ---------------------------------------------------------------------------------------
// Commands.

const DECISION_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function registerPolicyCommands(program: Command, deps: CliDeps): void {
  const policy = program
    .command("policy")
    .description("policy-as-code: compile, test and explain policies; look up a decision")
    // A missing or invalid flag is a usage error like any other: exit 2 (0 for --help).
    .exitOverride((err) => {
      if (err.exitCode === 0) process.exit(0);
      if (process.argv.includes("--json")) {
        process.stdout.write(`${JSON.stringify({ error: "usage", message: err.message })}\n`);
      }
      process.exit(2);
    });

  deps
    .withStoreOptions(policy.command("check"))
    .description("compile policy files (default: the config's policy.paths, else the default pack)")
    .argument("[paths...]", "policy files or directories of *.yaml")
    .option("--json", "print one JSON object")
    .action(async (paths: string[], opts: ConfigOpts) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadPolicy(paths, loadConfigFor(opts));
        const view = { ok: true, ...policyView(loaded) };
        deps.print(opts.json, view, () =>
          [
            `policy ${loaded.policy.version}: ${loaded.policy.ruleCount} rules in ${loaded.policy.sources.length} files (${loaded.from}), all compile`,
            ...loaded.policy.sources.map((f) => `  ${shown(f)}`),
          ].join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(policy.command("test"))
    .description("run a decision table; exits 1 when a case does not get its expected decision")
    .argument("<cases>", "YAML file of cases (see policies/default-cases.yaml)")
    .option(
      "--policy <paths...>",
      "policy files or directories (default: the config's, else the default pack)",
    )
    .option("--json", "print one JSON object")
    .action(async (casesFile: string, opts: ConfigOpts & { policy?: string[] }) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadConfigFor(opts);
        const cases = readCases(casesFile);
        const lp = loadPolicy(opts.policy, loaded);
        const now = new Date();
        const results = cases.map((c, index) => {
          const { input, risk } = buildInput(c, loaded.config, now);
          const d = lp.policy.decide(input);
          const effectOk = d.effect === c.expect;
          const rulesOk = c.rules === undefined || sameIds(c.rules, d.ruleIds);
          return {
            index: index + 1,
            name: c.name ?? null,
            pass: effectOk && rulesOk,
            expect: c.expect,
            ...(c.rules !== undefined ? { expectRules: c.rules } : {}),
            effect: d.effect,
            ruleIds: d.ruleIds,
            reason: d.reason,
            ...(risk ? { tier: risk.tier, openWorld: risk.openWorld, tierSource: risk.source } : {}),
          };
        });
        const failed = results.filter((r) => !r.pass).length;
        const view = {
          ok: failed === 0,
          passed: results.length - failed,
          failed,
          policy: policyView(lp),
          cases: results,
        };
        deps.print(opts.json, view, () => {
          const lines = results.map((r) => {
            const label = r.name ?? `case #${r.index}`;
            if (r.pass) return `PASS  ${label}: ${r.effect} (rules: ${ids(r.ruleIds)})`;
            const wanted =
              r.effect !== r.expect
                ? `expected ${r.expect}, got ${r.effect}`
                : `expected rules ${ids(r.expectRules ?? [])}, got ${ids(r.ruleIds)}`;
            return `FAIL  ${label} (#${r.index}): ${wanted}\n        rules: ${ids(r.ruleIds)}; reason: ${r.reason}`;
          });
          lines.push(
            "",
            `${view.passed} passed, ${failed} failed (${results.length} cases; policy ${lp.policy.version}, ${lp.policy.ruleCount} rules, ${lp.from})`,
          );
          return lines.join("\n");
        });
        if (failed > 0) process.exitCode = 1;
      });
    });

  deps
    .withStoreOptions(policy.command("explain"))
    .description("decide one request and show every rule: file:line, matched or not, and why")
    .requiredOption(
      "--principal <k=v,...>",
      "the caller, e.g. method=api_key,kind=service or method=oauth,kind=user,scopes=mcp|mcp:tools,groups=sre,expiresIn=3600",
    )
    .requiredOption("--server <name>", "the server name (as in /mcp/<name>)")
    .option("--tool <name>", "the tool (or prompt name, or resource URI for resources/*)")
    .option("--method <method>", "the JSON-RPC method", "tools/call")
    .addOption(
      new Option(
        "--tier <tier>",
        "the tool's risk tier (default: the config's pin, else the tier of the definition the gateway pinned in the store, else unknown = destructive)",
      ).choices(TIERS),
    )
    .option("--open-world", "the tool reaches outside systems (openWorldHint)")
    .option("--no-open-world", "the tool does not reach outside systems")
    .option("--annotations <json>", "the tool's annotations, to derive the tier the way the gateway does")
    .option("--args <json>", "the call's arguments, a JSON object")
    .option("--env <name>", "the gateway's environment (default: the config's)")
    .option("--time <iso>", "the time of the request (default: now)")
    .option(
      "--task <k=v,...>",
      "the task of a task token (method=task), e.g. id=t1,purpose=triage,remainingCalls=5,age=60",
    )
    .option("--actor <subs>", "the RFC 8693 actor chain, outermost first, e.g. agent-7|ci-runner")
    .option(
      "--policy <paths...>",
      "policy files or directories (default: the config's, else the default pack)",
    )
    .option("--json", "print one JSON object")
    .action(async (opts: ExplainOpts & ConfigOpts & { policy?: string[] }) => {
      await reportingPolicyErrors(opts.json, async () => {
        const loaded = loadConfigFor(opts);
        const c = explainCase(opts, loaded.config);
        const lp = loadPolicy(opts.policy, loaded);
        const pinned = await pinnedToolOf(c, opts, loaded, deps);
        const { input, risk } = buildInput(c, loaded.config, new Date(), pinned.lookup);
        const { decision, trace } = lp.policy.explain(input);
        const view = {
          decision,
          input: {
            principal: input.principal,
            task: input.task,
            actor: input.actor,
            action: input.action,
            resource: {
              ...input.resource,
              ...(risk ? { tierSource: risk.source } : {}),
              ...(pinned.note !== null ? { storePin: pinned.note } : {}),
            },
            context: { ...input.context, time: input.context.time.toISOString() },
          },
          policy: policyView(lp),
          rules: trace,
        };
        deps.print(opts.json, view, () =>
          [
            `decision    ${decisionLine(decision)}`,
            `principal   ${describePrincipal(input)}`,
            ...(input.task !== null ? [`task        ${describeTask(input)}`] : []),
            `request     ${describeRequest(input, risk)}`,
            ...(pinned.note !== null ? [`tool pin    ${pinned.note}`] : []),
            `arguments   ${JSON.stringify(input.context.arguments)}`,
            `environment ${input.context.environment}`,
            `policy      ${lp.policy.version} (${lp.policy.ruleCount} rules, ${lp.from})`,
            "",
            "rules (file order; deny overrides review, review overrides allow, no match = deny):",
            traceLines(trace),
          ].join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(policy.command("decision"))
    .description("show the audit record of a decision id a refused client was given")
    .argument("<decision-id>", 'the id in the client\'s error, e.g. "Forbidden by policy (decision 3kS9…)"')
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: ConfigOpts) => {
      if (!DECISION_ID.test(id)) {
        throw new PolicyInputError(
          `<decision-id> "${id}": expected the id from the error, letters, digits, - and _`,
        );
      }
      await deps.withStore(opts, async (store) => {
        const [record] = await store.listAudit({ decisionId: id, limit: 1 });
        if (record === undefined) {
          throw new PolicyInputError(
            `<decision-id> ${id}: no audit record with this decision id in this store (check --config / --store)`,
          );
        }
        const view = auditView(record);
        deps.print(opts.json, view, () => humanAudit(view));
      });
    });
}
