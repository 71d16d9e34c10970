/** `portcullis start`: runs the gateway, creating the first-run key and admin on the embedded default. */
import type { Command } from "commander";
import { Option } from "commander";
import { generatePassword } from "../admin/users.js";
import { issueKey } from "../authn/keyLifecycle.js";
import { loadConfig } from "../config/load.js";
import { oauthDatabase } from "../oauth/database.js";
import { addUser } from "../oauth/users.js";
import { createLogger } from "../telemetry/log.js";
import { operatorOwner } from "./auditTrail.js";
import { welcomeBanner } from "./banner.js";
import { type CommonOpts, overrides, withStoreOptions } from "./options.js";

export function registerStartCommand(program: Command): void {
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
      // Loaded here, not at the top: `portcullis start --help` need not load the whole gateway.
      const { startGateway } = await import("../gateway.js");
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
}
