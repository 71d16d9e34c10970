/** `portcullis keys create|list|show|revoke|rotate`. */
import type { Command } from "commander";
import { createKey, revokeKey, rotateKey } from "../admin/keys.js";
import { describeKey, KeyInputError } from "../authn/keyLifecycle.js";
import { serverSecret } from "../authn/serverSecret.js";
import { cliAudit, operatorOwner } from "./auditTrail.js";
import { type CommonOpts, print, withStore, withStoreOptions } from "./options.js";
import { table } from "./table.js";

function humanKey(k: Record<string, unknown>): string {
  return Object.entries(k)
    .map(([name, v]) => `${name.padEnd(12)} ${Array.isArray(v) ? v.join(", ") : String(v ?? "-")}`)
    .join("\n");
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command("keys").description("manage API keys");

  withStoreOptions(keys.command("create"))
    .description("create an API key (printed once)")
    .requiredOption("-n, --name <name>", "what the key is for, e.g. ci-nightly-sync")
    .option("--env <environment>", "environment the key is minted for (default: the config's)")
    .option(
      "--servers <patterns>",
      "comma-separated scopes: server, server:tool, server:prefix* (default: every configured server); each must name a configured server, and a tool the server is known to have",
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
        const {
          record,
          key,
          warnings = [],
        } = await createKey(
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
        const view = { ...describeKey(record), key, ...(warnings.length > 0 ? { warnings } : {}) };
        for (const w of warnings) process.stderr.write(`portcullis: warning: ${w}\n`);
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
    .option(
      "--expires <when>",
      "lifetime of the new key (90d, 12h, 2w) or ISO date; default: the old key's expiry",
    )
    .option("--json", "print one JSON object")
    .action(async (id: string, opts: CommonOpts & { overlap?: string; expires?: string }) => {
      await withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: false });
        const overlap = opts.overlap === undefined ? undefined : Number(opts.overlap);
        if (overlap !== undefined && (!Number.isInteger(overlap) || overlap < 0)) {
          throw new KeyInputError("--overlap must be a whole number of seconds");
        }
        const { issued, oldExpiresAt, keptExpiry } = await rotateKey(
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
          expiryKept: keptExpiry,
        };
        const expiry = `new key expires at ${issued.record.expiresAt.toISOString()} (${keptExpiry ? "same as the old key" : "--expires"})`;
        print(
          opts.json,
          view,
          () =>
            `${humanKey(describeKey(issued.record))}\n\nold key ${id} stops working at ${oldExpiresAt.toISOString()}\n${expiry}\n\nnew key (shown once):\n${issued.key}`,
        );
      });
    });
}
