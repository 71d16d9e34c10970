/**
 * `portcullis oauth signing-keys list|rotate`: the built-in authorization server's token
 * signing keys (RFC 7517). Rotation makes a new ES256 + RS256 pair the signing keys at once;
 * the retired pair stays in the JWKS for verification during the overlap
 * ({@link DEFAULT_KEY_OVERLAP_SECONDS}), so tokens signed just before keep verifying.
 * `--compromised` drops the retired pair at once: every token it signed is refused.
 * Running gateways hear of it through the store's change feed at their next token check, and
 * look every {@link SIGNING_KEY_RELOAD_SECONDS} anyway.
 */
import type { Command } from "commander";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { oauthDatabase } from "../oauth/database.js";
import {
  DEFAULT_KEY_OVERLAP_SECONDS,
  listSigningKeys,
  rotateSigningKeys,
  SIGNING_KEY_RELOAD_SECONDS,
} from "../oauth/signingKeys.js";
import { managementRecord, recordManagement } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

export interface SigningKeysCliDeps extends CliDeps {
  secretFor(config: Config): Buffer;
}

export function registerSigningKeyCommands(oauth: Command, deps: SigningKeysCliDeps): void {
  const keys = oauth
    .command("signing-keys")
    .description("the built-in authorization server's token signing keys");

  deps
    .withStoreOptions(keys.command("list"))
    .description("list signing keys (public facts only: kid, algorithm, state)")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store) => {
        const list = (await listSigningKeys(oauthDatabase(store))).map((k) => ({
          kid: k.kid,
          alg: k.alg,
          state: k.retiredAt === null ? "signing" : "retired",
          createdAt: k.createdAt.toISOString(),
          retiredAt: k.retiredAt?.toISOString() ?? null,
          publishedUntil: k.publishedUntil?.toISOString() ?? null,
        }));
        deps.print(opts.json, list, () =>
          table(
            list,
            ["kid", "alg", "state", "createdAt", "publishedUntil"],
            "(no signing keys yet: they are generated when the gateway first starts with oauth.mode builtin)",
          ),
        );
      });
    });

  deps
    .withStoreOptions(keys.command("rotate"))
    .description(
      `generate a new signing pair; the old one stays published for ${DEFAULT_KEY_OVERLAP_SECONDS / 3600}h unless --compromised`,
    )
    .option("--compromised", "drop the old keys from the JWKS now: tokens they signed are refused")
    .option("--json", "print one JSON object")
    .action(async (opts: { compromised?: boolean; json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        if (config.oauth?.mode !== "builtin") {
          throw new ConfigError(
            "oauth.mode: signing keys belong to the built-in authorization server (mode: builtin)",
          );
        }
        const overlapSeconds = opts.compromised ? 0 : DEFAULT_KEY_OVERLAP_SECONDS;
        const result = await rotateSigningKeys(oauthDatabase(store), deps.secretFor(config), {
          overlapSeconds,
        });
        // Running gateways hear it through the store's change feed (and check every 30 s anyway).
        await store.mutateCredentials(async () => true);
        await recordManagement(store, config, [
          managementRecord(
            config,
            "oauth.signing_keys_rotated",
            `signing keys rotated${opts.compromised ? " (previous keys dropped as compromised)" : ""}`,
            { detail: { created: result.created, retired: result.retired } },
          ),
        ]);
        const view = {
          ...result,
          overlapSeconds,
          reloadWithinSeconds: SIGNING_KEY_RELOAD_SECONDS,
        };
        deps.print(opts.json, view, () =>
          [
            `new signing keys: ${result.created.join(", ")}`,
            result.retired.length === 0
              ? "no previous keys"
              : opts.compromised
                ? `removed at once: ${result.retired.join(", ")} (tokens they signed are refused)`
                : `retired: ${result.retired.join(", ")} (published for verification for ${overlapSeconds / 3600}h)`,
            `running gateways switch within ${SIGNING_KEY_RELOAD_SECONDS}s`,
          ].join("\n"),
        );
      });
    });
}
