/**
 * `portcullis clients create|list|show|revoke`: machine clients of the built-in authorization
 * server, for the client_credentials grant (MCP extension "oauth-client-credentials").
 * `private_key_jwt` (RFC 7523 §2.2, recommended) stores only the client's public keys;
 * `client_secret_basic` prints a generated secret once and stores it sealed
 * (see src/oauth/machineClients.ts). Revocation reaches running gateways through the store's
 * change feed: the client's tokens are refused from the next request on.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { findClient, listClients, revokeClient } from "../admin/clients.js";
import { parseExpiry } from "../authn/keyLifecycle.js";
import { serverSecret } from "../authn/serverSecret.js";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import {
  createMachineClient,
  describeMachineClient,
  MACHINE_CLIENT_AUTH_METHODS,
  type MachineClientAuthMethod,
  MachineClientError,
  parsePublicKeys,
} from "../oauth/machineClients.js";
import { deriveOAuthKey } from "../oauth/secrets.js";
import type { Store } from "../store/types.js";
import { cliAudit, managementRecord, operatorOwner, recordManagement } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

const DAY_MS = 86_400_000;

/**
 * The gateway's public base URL as clients see it (the built-in AS's issuer), derived as the
 * gateway derives it (src/gateway.ts), or null when it cannot be known from here: no
 * `publicUrl` and `listen.port: 0`, where the port is chosen when the gateway starts.
 */
export function gatewayBaseUrl(config: Pick<Config, "publicUrl" | "listen">): string | null {
  if (config.publicUrl !== undefined) return config.publicUrl.replace(/\/$/, "");
  if (config.listen.port === 0) return null;
  const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
  return `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${config.listen.port}`;
}

const UNKNOWN_BASE_NOTE =
  "listen.port is 0, so the gateway's port is chosen when it starts: the token endpoint is <gateway URL>/token and the resources <gateway URL>/mcp/<server>; set publicUrl to have them printed";

/** Where a client gets its tokens and which resources it names (RFC 8707), when known. */
function endpoints(config: Config, servers: string[]): Record<string, unknown> {
  const base = gatewayBaseUrl(config);
  if (base === null) {
    return {
      tokenEndpoint: null,
      issuer: null,
      resources: servers.map((s) => `<gateway URL>/mcp/${s}`),
      note: UNKNOWN_BASE_NOTE,
    };
  }
  return { tokenEndpoint: `${base}/token`, issuer: base, resources: servers.map((s) => `${base}/mcp/${s}`) };
}

/** The human-readable lines shared by `create` and `show`: never a secret. */
function humanLines(view: Record<string, unknown>): string[] {
  const resources = view.resources as string[];
  return [
    `client id       ${String(view.clientId)}`,
    `name            ${String(view.name)}`,
    `authentication  ${String(view.authMethod)}`,
    `status          ${String(view.status)}`,
    `token endpoint  ${view.tokenEndpoint === null ? "<gateway URL>/token (see note)" : String(view.tokenEndpoint)}`,
    `resources       ${resources.join(", ")}`,
    `scopes          ${(view.scopes as string[]).join(" ") || "-"}`,
    `expires         ${String(view.expiresAt)}`,
    ...(view.revokedAt !== null ? [`revoked         ${String(view.revokedAt)}`] : []),
    ...(typeof view.note === "string" ? [`note            ${view.note}`] : []),
  ];
}

function requireBuiltin(config: Config): void {
  if (config.oauth?.mode !== "builtin") {
    throw new ConfigError(
      "machine clients belong to the built-in authorization server: set `oauth: { mode: builtin }` in the config",
    );
  }
}

function list(value: string | undefined): string[] | undefined {
  return value
    ?.split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? "cannot read the file"}`,
    );
  }
}

/** Operator mistakes are usage errors (exit 2), named after the flag. */
async function usage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MachineClientError) throw new ConfigError(err.message);
    throw err;
  }
}

async function auditOperator(store: Store, config: Config, clientId: string, reason: string): Promise<void> {
  await recordManagement(store, config, [
    managementRecord(config, "client.changed", reason, { credentialId: clientId }),
  ]);
}

interface CreateOpts {
  name: string;
  auth: string;
  jwks?: string;
  publicKey?: string;
  servers?: string;
  scopes?: string;
  expires?: string;
  json?: boolean;
}

export function registerClientCommands(program: Command, deps: CliDeps): void {
  const clients = program
    .command("clients")
    .description("manage machine clients (OAuth client_credentials) of the built-in authorization server");

  deps
    .withStoreOptions(clients.command("create"))
    .description("create a machine client; a client_secret_basic secret is printed once")
    .requiredOption("-n, --name <name>", "what the client is, e.g. nightly-report-job")
    .requiredOption(
      "--auth <method>",
      `token endpoint authentication: ${MACHINE_CLIENT_AUTH_METHODS.join(" or ")}`,
    )
    .option("--jwks <file>", "private_key_jwt: the client's public keys as a JWK Set (JSON)")
    .option("--public-key <file>", "private_key_jwt: the client's public key (PEM)")
    .option("--servers <names>", "comma-separated servers it may reach (default: every configured server)")
    .option(
      "--scopes <scopes>",
      "comma- or space-separated OAuth scopes it may get (default: those the servers use)",
    )
    .option("--expires <when>", "lifetime (90d, 12h, 2w) or ISO date; default keys.defaultTtlDays")
    .option("--json", "print one JSON object")
    .action(async (opts: CreateOpts) => {
      await deps.withStore(opts, async (store, { config }) =>
        usage(async () => {
          requireBuiltin(config);
          if (!(MACHINE_CLIENT_AUTH_METHODS as readonly string[]).includes(opts.auth)) {
            throw new MachineClientError(
              `--auth '${opts.auth}': use ${MACHINE_CLIENT_AUTH_METHODS.join(" or ")}`,
            );
          }
          if (opts.jwks !== undefined && opts.publicKey !== undefined) {
            throw new MachineClientError("--jwks and --public-key: give one of them, not both");
          }
          const jwks =
            opts.jwks !== undefined
              ? await parsePublicKeys(readFlagFile("--jwks", opts.jwks), "jwks")
              : opts.publicKey !== undefined
                ? await parsePublicKeys(readFlagFile("--public-key", opts.publicKey), "pem")
                : undefined;
          const configured = Object.keys(config.servers);
          const servers = list(opts.servers) ?? configured;
          if (servers.length === 0) {
            throw new MachineClientError("--servers is required: no servers are configured to default to");
          }
          for (const s of servers) {
            if (!configured.includes(s)) {
              throw new MachineClientError(
                `--servers: no server named '${s}' (configured: ${configured.join(", ") || "none"})`,
              );
            }
          }
          const offered = new Set(
            servers.flatMap((s) => {
              const scopes = config.servers[s]?.oauth;
              return scopes === undefined ? [] : [...scopes.scopes, ...Object.values(scopes.tools).flat()];
            }),
          );
          const scopes = list(opts.scopes) ?? [...offered];
          for (const s of scopes) {
            if (!offered.has(s)) {
              throw new MachineClientError(
                `--scopes: '${s}' is not a scope of the chosen servers (${[...offered].join(", ") || "none"})`,
              );
            }
          }
          const now = Date.now();
          const expiresAt = parseExpiry(opts.expires ?? `${config.keys.defaultTtlDays * 24 * 3600}s`, now);
          if (expiresAt.getTime() > now + config.keys.maxTtlDays * DAY_MS) {
            throw new MachineClientError(
              `--expires exceeds the maximum credential lifetime of ${config.keys.maxTtlDays} days (keys.maxTtlDays)`,
            );
          }
          const sealKey = deriveOAuthKey(serverSecret(config, { create: true }), "client-secret-encryption");
          const { client, clientSecret } = await createMachineClient(
            store,
            sealKey,
            {
              name: opts.name,
              authMethod: opts.auth as MachineClientAuthMethod,
              ...(jwks !== undefined ? { jwks } : {}),
              servers,
              scopes,
              expiresAt,
              createdBy: operatorOwner(),
            },
            now,
          );
          await auditOperator(
            store,
            config,
            client.clientId,
            `machine client created (${client.authMethod})`,
          );
          const view = {
            ...describeMachineClient(client, now),
            ...endpoints(config, client.servers),
            ...(clientSecret !== null ? { clientSecret } : {}),
          };
          deps.print(opts.json, view, () =>
            [
              ...humanLines(view),
              ...(clientSecret !== null
                ? ["", "client secret (shown once, store it now):", clientSecret]
                : []),
            ].join("\n"),
          );
        }),
      );
    });

  deps
    .withStoreOptions(clients.command("list"))
    .description("list machine clients (never a secret)")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store) => {
        const all = (await listClients(store)).map((c) => describeMachineClient(c));
        deps.print(opts.json, all, () =>
          table(
            all,
            ["clientId", "name", "authMethod", "status", "servers", "expiresAt"],
            "(no machine clients)",
          ),
        );
      });
    });

  deps
    .withStoreOptions(clients.command("show"))
    .description("show one machine client and where it gets tokens (never a secret)")
    .argument("<client-id>", "the client id (mc_…)")
    .option("--json", "print one JSON object")
    .action(async (clientId: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const client = await findClient(store, clientId);
        if (client === undefined) throw new ConfigError(`<client-id>: no machine client with id ${clientId}`);
        const view = { ...describeMachineClient(client), ...endpoints(config, client.servers) };
        deps.print(opts.json, view, () => humanLines(view).join("\n"));
      });
    });

  deps
    .withStoreOptions(clients.command("revoke"))
    .description("revoke a machine client; its tokens are refused from the next request on")
    .argument("<client-id>", "the client id (mc_…)")
    .option("--json", "print one JSON object")
    .action(async (clientId: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        if ((await findClient(store, clientId)) === undefined) {
          throw new ConfigError(`<client-id>: no machine client with id ${clientId}`);
        }
        await revokeClient(store, clientId, cliAudit(store, config));
        const client = await findClient(store, clientId);
        if (client === undefined) throw new Error(`machine client ${clientId} vanished`);
        deps.print(
          opts.json,
          describeMachineClient(client),
          () => `revoked ${client.clientId} (${client.name}) at ${client.revokedAt?.toISOString()}`,
        );
      });
    });
}
