#!/usr/bin/env node
/**
 * The `portcullis` command. Every command takes --config / --data-dir / --store to find
 * the same store the gateway uses; PORTCULLIS_* environment variables mirror the flags.
 * Reference: docs/cli.md.
 */
import { Command } from "commander";
import { KeyInputError } from "../authn/keyLifecycle.js";
import { serverSecret } from "../authn/serverSecret.js";
import { ConfigError } from "../config/load.js";
import { UserError } from "../oauth/users.js";
import { VERSION } from "../version.js";
import { registerApprovalCommands } from "./approvals.js";
import { registerAuditCommands } from "./audit.js";
import { registerClientCommands } from "./clients.js";
import { addExamples } from "./examples.js";
import { registerKeyCommands } from "./keys.js";
import { print, withStore, withStoreOptions } from "./options.js";
import { registerPolicyCommands } from "./policy.js";
import { registerSigningKeyCommands } from "./signingKeys.js";
import { registerStartCommand } from "./start.js";
import { registerToolCommands } from "./tools.js";
import { registerUserCommands } from "./users.js";

export function buildCli(): Command {
  const program = new Command("portcullis")
    .description("Authentication and authorization gateway for MCP servers")
    .version(VERSION)
    .showHelpAfterError();

  registerStartCommand(program);
  registerKeyCommands(program);

  registerUserCommands(program, { withStoreOptions, withStore, print });
  registerClientCommands(program, { withStoreOptions, withStore, print });
  registerToolCommands(program, { withStoreOptions, withStore, print });
  registerPolicyCommands(program, { withStoreOptions, withStore, print });
  registerApprovalCommands(program, { withStoreOptions, withStore, print });
  registerAuditCommands(program, { withStoreOptions, withStore, print });

  const oauth = program.command("oauth").description("the built-in OAuth authorization server");
  registerSigningKeyCommands(oauth, {
    withStoreOptions,
    withStore,
    print,
    secretFor: (config) => serverSecret(config, { create: false }),
  });

  addExamples(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const json = process.argv.includes("--json");
    const usage = err instanceof ConfigError || err instanceof KeyInputError || err instanceof UserError;
    const message = usage
      ? (err as Error).message
      : `unexpected error: ${(err as Error)?.stack ?? String(err)}`;
    if (json) process.stdout.write(`${JSON.stringify({ error: usage ? "usage" : "internal", message })}\n`);
    process.stderr.write(`portcullis: ${message}\n`);
    process.exit(usage ? 2 : 1);
  }
}

await main();
