/**
 * `portcullis start`: runs the gateway. On the embedded default's first run it creates a
 * development key; whenever the built-in authorization server has no user yet (any config)
 * it creates the first admin. Both are shown once in the banner, whose commands name this
 * gateway's store so that they work verbatim from any directory.
 */
import type { Command } from "commander";
import { Option } from "commander";
import { addUser, generatePassword, listUsers } from "../admin/users.js";
import { issueKey } from "../authn/keyLifecycle.js";
import { describeConfigSource, type LoadedConfig, loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import type { Gateway } from "../gateway.js";
import { isPostgresSpec, storeDisplayName } from "../store/open.js";
import { createLogger } from "../telemetry/log.js";
import { cliAudit, operatorOwner } from "./auditTrail.js";
import { cliInvocation, shellQuote, welcomeBanner } from "./banner.js";
import { type CommonOpts, overrides, withStoreOptions } from "./options.js";

type StartOpts = CommonOpts & { port?: string; host?: string; environment?: string };

/** The first admin, when the built-in authorization server signs in local users and has none. */
async function firstAdmin(
  gateway: Gateway,
  config: Config,
): Promise<{ username: string; password: string } | null> {
  if (config.oauth?.mode !== "builtin") return null;
  const login = config.oauth.login;
  if (!(login?.localUsers ?? login?.upstream === undefined)) return null;
  if ((await listUsers(gateway.store)).length > 0) return null;
  const user = { username: "admin", password: generatePassword() };
  try {
    await addUser(
      gateway.store,
      { ...user, email: null, groups: [config.console.adminGroups[0] ?? "admins"] },
      cliAudit(gateway.store, config),
    );
  } catch (err) {
    // Another replica of the same store created it first (UserError, or the unique index).
    if ((await listUsers(gateway.store)).length > 0) return null;
    throw err;
  }
  return user;
}

/** Whether a postgres:// URL carries a password (unparseable: assume it does, never print it). */
function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== "";
  } catch {
    return true;
  }
}

/** What another command needs to use this gateway's store, from any working directory. */
function storeArgs(loaded: LoadedConfig, opts: StartOpts): { args: string; notes: string[] } {
  const args: string[] = [];
  const notes: string[] = [];
  // The embedded default is named too: elsewhere a ./portcullis.yaml would be found instead.
  args.push(...(loaded.source !== null ? ["--config", shellQuote(loaded.source)] : ["--no-config"]));
  if (loaded.source === null || opts.dataDir !== undefined)
    args.push("--data-dir", shellQuote(loaded.config.dataDir));
  if (opts.store !== undefined && opts.store !== "sqlite") {
    if (!isPostgresSpec(opts.store)) args.push("--store", shellQuote(loaded.storeSpec));
    else if (!hasPassword(opts.store)) args.push("--store", shellQuote(opts.store));
    else if (process.env.PORTCULLIS_STORE === opts.store) args.push("--store", '"$PORTCULLIS_STORE"');
    else {
      args.push("--store", shellQuote(storeDisplayName(opts.store)));
      notes.push("(In the commands above, replace *** with the store's password: it is never printed.)");
    }
  }
  return { args: args.join(" "), notes };
}

/** publicUrl on this machine, naming another port than the one bound: the printed URLs would not work. */
function portMismatch(config: Config, port: number): string[] {
  if (config.publicUrl === undefined) return [];
  const url = new URL(config.publicUrl);
  const named = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
  return loopback && named !== port
    ? [
        `Warning: publicUrl ${config.publicUrl} names port ${named}, but the gateway listens on ${port}: the URLs above are publicUrl's. Change publicUrl or drop --port.`,
      ]
    : [];
}

export function registerStartCommand(program: Command): void {
  withStoreOptions(program.command("start"))
    .description(
      "start the gateway (config: --config, PORTCULLIS_CONFIG, ./portcullis.yaml, else the embedded default: SQLite in the data directory and the bundled demo server)",
    )
    .addOption(new Option("-p, --port <port>", "listen port").env("PORTCULLIS_PORT"))
    .addOption(new Option("--host <host>", "listen address").env("PORTCULLIS_HOST"))
    .addOption(
      new Option("-e, --environment <name>", "environment of this instance (dev, test, prod, …)").env(
        "PORTCULLIS_ENVIRONMENT",
      ),
    )
    .action(async (opts: StartOpts) => {
      const loaded = loadConfig(overrides(opts));
      const log = createLogger(loaded.config.log.level);
      // Loaded here, not at the top: `portcullis start --help` need not load the whole gateway.
      const { startGateway } = await import("../gateway.js");
      const gateway = await startGateway(loaded, log);
      let firstKey: string | null = null;
      if (loaded.source === null && (await gateway.store.getSetting("bootstrap.devKey")) === undefined) {
        const issued = await issueKey(gateway.store, gateway.secret, loaded.config, {
          name: "dev-key",
          expires: "30d",
          createdBy: operatorOwner(),
        });
        await gateway.store.setSetting("bootstrap.devKey", issued.record.id);
        firstKey = issued.key;
      }
      // OAuth with zero extra steps: an account to sign in with (and to reach the console).
      const firstUser = await firstAdmin(gateway, loaded.config);
      const store = storeArgs(loaded, opts);
      process.stderr.write(
        welcomeBanner({
          baseUrl: gateway.url,
          servers: Object.entries(loaded.config.servers).map(([name, s]) => ({
            name,
            transport: s.transport,
          })),
          environment: loaded.config.environment,
          key: firstKey,
          user: firstUser,
          invocation: cliInvocation(),
          storeArgs: store.args,
          ...(opts.environment !== undefined
            ? { keyArgs: `--env ${shellQuote(loaded.config.environment)}` }
            : {}),
          using: `${describeConfigSource({ path: loaded.source, foundBy: loaded.foundBy })}; store ${storeDisplayName(loaded.storeSpec)}`,
          notes: [...store.notes, ...portMismatch(loaded.config, gateway.port)],
        }),
      );
      const stop = async (signal: string) => {
        log.info({ signal }, "shutting down");
        await gateway.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
    });
}
