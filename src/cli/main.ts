#!/usr/bin/env node
/**
 * The `portcullis` command. Every command takes --config / --data-dir / --store to find
 * the same store the gateway uses; PORTCULLIS_* environment variables mirror the flags.
 * Reference: docs/cli.md.
 *
 * Each top-level command's module is loaded only when that command runs: `portcullis --help`
 * or `portcullis keys list` does not load the gateway (fastify, the OAuth server, CEL, …).
 * Exit codes: 0 success (`--help`, `--version` included), 2 usage or configuration error
 * (commander's own errors included), 1 anything else.
 */
import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import type { CliDeps } from "./commandDeps.js";
import { addExamples } from "./examples.js";

/** Adds one top-level command, loading its module. */
type Register = (program: Command) => Promise<void>;

async function cliDeps(): Promise<CliDeps> {
  const { print, withStore, withStoreOptions } = await import("./options.js");
  return { withStoreOptions, withStore, print };
}

/**
 * Every top-level command: its name and summary (what `portcullis --help` lists without loading
 * anything) and how to load and register it. The summary repeats the command's own description.
 */
const COMMANDS: readonly { name: string; description: string; register: Register }[] = [
  {
    name: "start",
    description:
      "start the gateway (config: --config, PORTCULLIS_CONFIG, ./portcullis.yaml, else the embedded default: SQLite in the data directory and the bundled demo server)",
    register: async (p) => (await import("./start.js")).registerStartCommand(p),
  },
  {
    name: "init",
    description:
      "first run: write a commented portcullis.yaml (importing the servers of Claude Desktop, Cursor or VS Code), create the store and the first admin, print client configs",
    register: async (p) => (await import("./init.js")).registerInitCommand(p),
  },
  {
    name: "doctor",
    description:
      "check the config, store, upstreams, OAuth discovery, clock, secret files and Node; print what to fix",
    register: async (p) => (await import("./doctor.js")).registerDoctorCommand(p),
  },
  {
    name: "keys",
    description: "manage API keys",
    register: async (p) => (await import("./keys.js")).registerKeyCommands(p),
  },
  {
    name: "tasks",
    description: "tasks: short-lived credentials bound to one piece of work (start, list, show, end)",
    register: async (p) => (await import("./tasks.js")).registerTaskCommands(p, await cliDeps()),
  },
  {
    name: "users",
    description: "manage local user accounts of the built-in authorization server",
    register: async (p) => (await import("./users.js")).registerUserCommands(p, await cliDeps()),
  },
  {
    name: "clients",
    description: "manage machine clients (OAuth client_credentials) of the built-in authorization server",
    register: async (p) => (await import("./clients.js")).registerClientCommands(p, await cliDeps()),
  },
  {
    name: "tools",
    description: "pinned tool definitions: review and accept tools whose definition changed",
    register: async (p) => (await import("./tools.js")).registerToolCommands(p, await cliDeps()),
  },
  {
    name: "policy",
    description: "policy-as-code: compile, test and explain policies; look up a decision",
    register: async (p) => (await import("./policy.js")).registerPolicyCommands(p, await cliDeps()),
  },
  {
    name: "approvals",
    description: "runtime review: list, approve and deny held calls",
    register: async (p) => (await import("./approvals.js")).registerApprovalCommands(p, await cliDeps()),
  },
  {
    name: "audit",
    description: "the tamper-evident audit trail: verify, search, tail, export",
    register: async (p) => (await import("./audit.js")).registerAuditCommands(p, await cliDeps()),
  },
  {
    name: "servers",
    description: "the configured upstream MCP servers and their health",
    register: async (p) => (await import("./servers.js")).registerServerCommands(p, await cliDeps()),
  },
  {
    name: "oauth",
    description: "the built-in OAuth authorization server",
    register: async (p) => {
      const oauth = p.command("oauth").description("the built-in OAuth authorization server");
      const [{ registerSigningKeyCommands }, { serverSecret }] = await Promise.all([
        import("./signingKeys.js"),
        import("../authn/serverSecret.js"),
      ]);
      registerSigningKeyCommands(oauth, {
        ...(await cliDeps()),
        secretFor: (config) => serverSecret(config, { create: false }),
      });
    },
  },
];

/** The top-level command argv names (`portcullis help <command>` names it second), if any. */
function commandNamed(args: readonly string[]): string | undefined {
  // The program's own options (--help, --version) take no value: the first word is the command.
  const words = args.filter((a) => !a.startsWith("-"));
  return words[0] === "help" ? words[1] : words[0];
}

/**
 * The CLI for these arguments: the command they name is loaded and registered in full, every
 * other one only by name and summary (enough for `--help` and for "unknown command").
 */
export async function buildCli(args: readonly string[]): Promise<Command> {
  const program = new Command("portcullis")
    .description("Authentication and authorization gateway for MCP servers")
    .version(VERSION)
    .showHelpAfterError()
    // Commander's usage errors throw instead of exiting 1: main() exits 2 (0 for --help/--version).
    // Set before the commands are added, which inherit it.
    .exitOverride();

  const named = commandNamed(args);
  for (const command of COMMANDS) {
    if (command.name === named) await command.register(program);
    else program.command(command.name).description(command.description);
  }
  addExamples(program);
  return program;
}

/** ConfigError, KeyInputError and UserError are usage errors; loaded only when something failed. */
async function isUsageError(err: unknown): Promise<boolean> {
  try {
    const [{ ConfigError }, { KeyInputError }, { UserError }] = await Promise.all([
      import("../config/load.js"),
      import("../authn/keyLifecycle.js"),
      import("../oauth/users.js"),
    ]);
    return err instanceof ConfigError || err instanceof KeyInputError || err instanceof UserError;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  try {
    const program = await buildCli(process.argv.slice(2));
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message (and the help after it) on stderr.
      if (err.exitCode === 0) process.exit(0);
      if (json) process.stdout.write(`${JSON.stringify({ error: "usage", message: err.message })}\n`);
      process.exit(2);
    }
    const usage = await isUsageError(err);
    // A run-time problem in the surroundings (port in use, store unreachable): its message is complete.
    const operational = (err as Error | null)?.name === "OperationalError";
    const message =
      usage || operational
        ? (err as Error).message
        : `unexpected error: ${(err as Error)?.stack ?? String(err)}`;
    const kind = usage ? "usage" : operational ? "unavailable" : "internal";
    if (json) process.stdout.write(`${JSON.stringify({ error: kind, message })}\n`);
    process.stderr.write(`portcullis: ${message}\n`);
    process.exit(usage ? 2 : 1);
  }
}

await main();
