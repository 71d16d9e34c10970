#!/usr/bin/env node
/**
 * The `portcullis` command. Every command takes --config / --data-dir / --store to find
 * the same store the gateway uses; PORTCULLIS_* environment variables mirror the flags.
 * Reference: docs/cli.md.
 */
import { Command, Option } from "commander";
import { createKey, revokeKey, rotateKey } from "../admin/keys.js";
import { generatePassword } from "../admin/users.js";
import { describeKey, issueKey, KeyInputError } from "../authn/keyLifecycle.js";
import { serverSecret } from "../authn/serverSecret.js";
import { ConfigError, type ConfigOverrides, type LoadedConfig, loadConfig } from "../config/load.js";
import { startGateway } from "../gateway.js";
import { oauthDatabase } from "../oauth/database.js";
import { addUser, UserError } from "../oauth/users.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/types.js";
import { createLogger } from "../telemetry/log.js";
import { VERSION } from "../version.js";
import { registerApprovalCommands } from "./approvals.js";
import { registerAuditCommands } from "./audit.js";
import { cliAudit, operatorOwner } from "./auditTrail.js";
import { welcomeBanner } from "./banner.js";
import { registerClientCommands } from "./clients.js";
import { registerPolicyCommands } from "./policy.js";
import { registerSigningKeyCommands } from "./signingKeys.js";
import { table } from "./table.js";
import { registerToolCommands } from "./tools.js";
import { registerUserCommands } from "./users.js";

interface CommonOpts {
  config?: string;
  dataDir?: string;
  store?: string;
  env?: string;
  json?: boolean;
}

function withStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-c, --config <file>", "config file (portcullis.yaml)").env("PORTCULLIS_CONFIG"))
    .addOption(
      new Option("-d, --data-dir <dir>", "data directory (embedded store, generated secrets)").env(
        "PORTCULLIS_DATA_DIR",
      ),
    )
    .addOption(
      new Option("--store <spec>", "store: 'sqlite', a SQLite file, or a postgres:// URL").env(
        "PORTCULLIS_STORE",
      ),
    );
}

function overrides(
  opts: CommonOpts & { port?: string; host?: string; environment?: string },
): ConfigOverrides {
  const port = opts.port === undefined ? undefined : Number(opts.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new ConfigError(`--port '${opts.port}': must be an integer between 0 and 65535`);
  }
  return {
    config: opts.config,
    dataDir: opts.dataDir,
    store: opts.store,
    port,
    host: opts.host,
    environment: opts.environment,
  };
}

async function withStore<T>(
  opts: CommonOpts,
  fn: (store: Store, loaded: LoadedConfig) => Promise<T>,
): Promise<T> {
  const loaded = loadConfig(overrides(opts));
  const store = await openStore(loaded.storeSpec);
  try {
    return await fn(store, loaded);
  } finally {
    await store.close();
  }
}

function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

function humanKey(k: Record<string, unknown>): string {
  return Object.entries(k)
    .map(([name, v]) => `${name.padEnd(12)} ${Array.isArray(v) ? v.join(", ") : String(v ?? "-")}`)
    .join("\n");
}

export function buildCli(): Command {
  const program = new Command("portcullis")
    .description("Authentication and authorization gateway for MCP servers")
    .version(VERSION)
    .showHelpAfterError();

  withStoreOptions(program.command("start"))
    .description("start the gateway (with no config file: embedded SQLite store and the bundled demo server)")
    .addOption(new Option("-p, --port <port>", "listen port").env("PORTCULLIS_PORT"))
    .addOption(new Option("--host <host>", "listen address").env("PORTCULLIS_HOST"))
    .addOption(
      new Option("-e, --environment <name>", "environment of this instance (dev, test, prod, …)").env(
        "PORTCULLIS_ENVIRONMENT",
      ),
    )
    .action(async (opts: CommonOpts & { port?: string; host?: string; environment?: string }) => {
      const loaded = loadConfig(overrides(opts));
      const log = createLogger(loaded.config.log.level);
      const gateway = await startGateway(loaded, log);
      let firstKey: string | null = null;
      let firstUser: { username: string; password: string } | null = null;
      if (loaded.source === null && (await gateway.store.getSetting("bootstrap.devKey")) === undefined) {
        const issued = await issueKey(gateway.store, gateway.secret, loaded.config, {
          name: "dev-key",
          expires: "30d",
          createdBy: operatorOwner(),
        });
        await gateway.store.setSetting("bootstrap.devKey", issued.record.id);
        firstKey = issued.key;
        // OAuth with zero extra steps: an account to sign in with from the first run.
        if (loaded.config.oauth?.mode === "builtin") {
          firstUser = { username: "admin", password: generatePassword() };
          await addUser(oauthDatabase(gateway.store), { ...firstUser, groups: ["admins"] });
        }
      }
      process.stderr.write(
        welcomeBanner(
          gateway.url,
          Object.keys(loaded.config.servers),
          loaded.config.environment,
          firstKey,
          firstUser,
        ),
      );
      const stop = async (signal: string) => {
        log.info({ signal }, "shutting down");
        await gateway.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });

  const keys = program.command("keys").description("manage API keys");

  withStoreOptions(keys.command("create"))
    .description("create an API key (printed once)")
    .requiredOption("-n, --name <name>", "what the key is for, e.g. ci-nightly-sync")
    .option("--env <environment>", "environment the key is minted for (default: the config's)")
    .option(
      "--servers <patterns>",
      "comma-separated scopes: server, server:tool, server:prefix* (default: every configured server)",
    )
    .option("--expires <when>", "lifetime (90d, 12h, 2w) or ISO date; default keys.defaultTtlDays")
    .option("--json", "print one JSON object")
    .action(async (opts: CommonOpts & { name: string; servers?: string; expires?: string }) => {
      await withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: true });
        const scopes = opts.servers
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        const { record, key } = await createKey(
          store,
          secret,
          config,
          {
            name: opts.name,
            ...(opts.env !== undefined ? { environment: opts.env } : {}),
            ...(scopes ? { scopes } : {}),
            ...(opts.expires !== undefined ? { expires: opts.expires } : {}),
            createdBy: operatorOwner(),
          },
          cliAudit(store, config),
        );
        const view = { ...describeKey(record), key };
        print(
          opts.json,
          view,
          () => `${humanKey(describeKey(record))}\n\nkey (shown once, store it now):\n${key}`,
        );
      });
    });

  withStoreOptions(keys.command("list"))
    .description("list API keys")
    .option("-a, --all", "include revoked keys")
    .option("--json", "print a JSON array")
    .action(async (opts: CommonOpts & { all?: boolean }) => {
      await withStore(opts, async (store) => {
        const list = (await store.listKeys({ includeRevoked: Boolean(opts.all) })).map((k) => describeKey(k));
        print(opts.json, list, () =>
          table(
            list,
            ["id", "name", "environment", "status", "scopes", "expiresAt", "lastUsedAt", "useCount"],
            "(no keys)",
          ),
        );
      });
    });

  withStoreOptions(keys.command("show"))
    .description("show one API key (never its secret)")
    .argument("<id>", "key id (the part after pcl_<env>_)")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: CommonOpts) => {
      await withStore(opts, async (store) => {
        const k = await store.getKey(id);
        if (!k) throw new KeyInputError(`no key with id ${id}`);
        print(opts.json, describeKey(k), () => humanKey(describeKey(k)));
      });
    });

  withStoreOptions(keys.command("revoke"))
    .description("revoke an API key; refused from the next request on")
    .argument("<id>", "key id")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: CommonOpts) => {
      await withStore(opts, async (store, { config }) => {
        const revoked = await revokeKey(store, id, cliAudit(store, config));
        if (revoked === undefined) throw new KeyInputError(`no key with id ${id}`);
        const k = revoked.key;
        print(opts.json, describeKey(k), () => `revoked ${id} (${k.name}) at ${k.revokedAt?.toISOString()}`);
      });
    });

  withStoreOptions(keys.command("rotate"))
    .description("issue a successor key; the old one stays valid only for the overlap window")
    .argument("<id>", "key id")
    .option("--overlap <seconds>", "seconds the old key keeps working (default keys.rotationOverlapSeconds)")
    .option("--expires <when>", "lifetime of the new key")
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: CommonOpts & { overlap?: string; expires?: string }) => {
      await withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: false });
        const overlap = opts.overlap === undefined ? undefined : Number(opts.overlap);
        if (overlap !== undefined && (!Number.isInteger(overlap) || overlap < 0)) {
          throw new KeyInputError("--overlap must be a whole number of seconds");
        }
        const { issued, oldExpiresAt } = await rotateKey(
          store,
          secret,
          config,
          id,
          {
            ...(overlap !== undefined ? { overlapSeconds: overlap } : {}),
            ...(opts.expires !== undefined ? { expires: opts.expires } : {}),
            createdBy: operatorOwner(),
          },
          cliAudit(store, config),
        );
        const view = {
          ...describeKey(issued.record),
          key: issued.key,
          previous: { id, expiresAt: oldExpiresAt.toISOString() },
        };
        print(
          opts.json,
          view,
          () =>
            `${humanKey(describeKey(issued.record))}\n\nold key ${id} stops working at ${oldExpiresAt.toISOString()}\n\nnew key (shown once):\n${issued.key}`,
        );
      });
    });

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
