/**
 * Machine clients of the built-in authorization server: OAuth clients that an operator
 * creates (`portcullis clients create`) for the `client_credentials` grant (OAuth 2.1 §4.2,
 * MCP extension "oauth-client-credentials"), authenticated at the token endpoint by
 * `private_key_jwt` (RFC 7523 §2.2, recommended by the extension) or `client_secret_basic`
 * (RFC 6749 §2.3.1). No redirect URIs, no users; each client may reach only the MCP
 * endpoints (`/mcp/<server>`) and scopes it was created with, and it always expires.
 *
 * Only these clients may use `client_credentials`: their ids have their own shape
 * (`mc_` + 128 random bits, see {@link isMachineClientId}), the DCR endpoint always mints its
 * own ids and CIMD ids are URLs, so no self-registered client can ever be one of them.
 *
 * Storage (table `oauth_machine_clients`, migration 003): for `private_key_jwt` only the
 * client's public JWK Set. For `client_secret_basic` the secret (256 random bits, shown
 * once) is **sealed**, AES-256-GCM under a key derived from the server secret
 * (./secrets.ts, purpose `client-secret-encryption`, the client id as associated data), and
 * unsealed only when oidc-provider loads the client through {@link withMachineClients}.
 * Why sealed rather than hashed: oidc-provider authenticates the client itself, comparing
 * the presented secret with the `client_secret` of the loaded client metadata in constant
 * time (`Client#compareClientSecret`), and also applies `client_secret_expires_at`. Storing
 * only a hash would mean replacing that comparison inside oidc-provider (an internal method
 * that may change with any release); sealing keeps oidc-provider's own client authentication
 * untouched, while the store (SQLite file, PostgreSQL, backups) never holds the secret.
 *
 * Every change (create, revoke) is written through Store#mutateCredentials, so it travels
 * on the same change feed as API key revocations (./machineClientRoster.ts listens).
 */
import { createPublicKey, type JsonWebKey, randomBytes } from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import type { Kysely, Transaction } from "kysely";
import type { KeyOwner, Store } from "../store/types.js";
import type { AdapterPayload, OidcAdapter, OidcAdapterClass } from "./adapter.js";
import type { OAuthDatabase, OAuthMachineClientsTable } from "./database.js";
import { TOKEN_EXCHANGE_GRANT } from "./exchangeTokens.js";
import { seal, unseal } from "./secrets.js";

export type MachineClientAuthMethod = "private_key_jwt" | "client_secret_basic";
export const MACHINE_CLIENT_AUTH_METHODS: readonly MachineClientAuthMethod[] = [
  "private_key_jwt",
  "client_secret_basic",
];

export interface MachineClient {
  clientId: string;
  name: string;
  authMethod: MachineClientAuthMethod;
  /** private_key_jwt: the public keys its client assertions are signed with. */
  jwks: { keys: JWK[] } | null;
  /** Gateway server names; `<issuer>/mcp/<name>` are the resources it may get tokens for. */
  servers: string[];
  scopes: string[];
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  /** Who created it: never the approver of its calls (src/review/separationOfDuties.ts). */
  createdBy: KeyOwner | null;
}

/** Bad operator input; the message names the flag. */
export class MachineClientError extends Error {
  override name = "MachineClientError";
}

const ID_PATTERN = /^mc_[A-Za-z0-9_-]{22}$/;
/** Members of a JWK that carry private key material (RFC 7517 §9.2, RFC 7518 §6). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const ASYMMETRIC_KTY = new Set(["RSA", "EC", "OKP"]);
const MAX_KEYS = 10;

export function isMachineClientId(id: unknown): id is string {
  return typeof id === "string" && ID_PATTERN.test(id);
}

function rowToClient(row: OAuthMachineClientsTable): MachineClient {
  return {
    clientId: row.client_id,
    name: row.name,
    authMethod: row.auth_method as MachineClientAuthMethod,
    jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as { keys: JWK[] }),
    servers: JSON.parse(row.servers) as string[],
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: new Date(Number(row.created_at)),
    expiresAt: new Date(Number(row.expires_at)),
    revokedAt: row.revoked_at === null ? null : new Date(Number(row.revoked_at)),
    createdBy:
      row.created_by === null
        ? null
        : { principal: row.created_by, name: row.created_by_name ?? row.created_by },
  };
}

/** Why the client may not obtain or use tokens at `now`, or null while it is live. */
export function machineClientProblem(client: MachineClient, now: number = Date.now()): string | null {
  if (client.revokedAt !== null && client.revokedAt.getTime() <= now)
    return `machine client ${client.clientId} revoked at ${client.revokedAt.toISOString()}`;
  if (client.expiresAt.getTime() <= now)
    return `machine client ${client.clientId} expired at ${client.expiresAt.toISOString()}`;
  return null;
}

/**
 * Parses the client's public keys: a JWK Set (`--jwks`) or one PEM public key
 * (`--public-key`). Refuses private key material and symmetric keys; gives every key a
 * `kid` (its RFC 7638 thumbprint) when it has none.
 */
export async function parsePublicKeys(text: string, format: "jwks" | "pem"): Promise<{ keys: JWK[] }> {
  const flag = format === "jwks" ? "--jwks" : "--public-key";
  let keys: JWK[];
  if (format === "pem") {
    if (/PRIVATE KEY/.test(text)) {
      throw new MachineClientError(`${flag}: this is a private key; give the client's public key only`);
    }
    try {
      keys = [createPublicKey(text).export({ format: "jwk" }) as JWK];
    } catch {
      throw new MachineClientError(`${flag}: not a PEM public key (-----BEGIN PUBLIC KEY-----)`);
    }
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new MachineClientError(`${flag}: not valid JSON`);
    }
    const list = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list) || list.length === 0) {
      throw new MachineClientError(`${flag}: expected a JWK Set, {"keys": [ ... ]}, with at least one key`);
    }
    keys = list as JWK[];
  }
  if (keys.length > MAX_KEYS) throw new MachineClientError(`${flag}: at most ${MAX_KEYS} keys`);
  const out: JWK[] = [];
  const kids = new Set<string>();
  for (const key of keys) {
    if (typeof key !== "object" || key === null || Array.isArray(key)) {
      throw new MachineClientError(`${flag}: every key must be a JSON object`);
    }
    if (!ASYMMETRIC_KTY.has(String(key.kty))) {
      throw new MachineClientError(`${flag}: key type ${String(key.kty)} is not allowed (RSA, EC or OKP)`);
    }
    if (PRIVATE_MEMBERS.some((m) => m in key)) {
      throw new MachineClientError(`${flag}: contains private key material; give the public keys only`);
    }
    if (key.use !== undefined && key.use !== "sig") {
      throw new MachineClientError(`${flag}: key use must be "sig"`);
    }
    try {
      createPublicKey({ key: key as JsonWebKey, format: "jwk" });
    } catch {
      throw new MachineClientError(`${flag}: a key is not a valid ${String(key.kty)} public key`);
    }
    const kid = typeof key.kid === "string" && key.kid !== "" ? key.kid : await calculateJwkThumbprint(key);
    if (kids.has(kid)) throw new MachineClientError(`${flag}: duplicate kid ${kid}`);
    kids.add(kid);
    out.push({ ...key, kid });
  }
  return { keys: out };
}

export interface NewMachineClient {
  name: string;
  authMethod: MachineClientAuthMethod;
  /** Required for private_key_jwt, refused otherwise. */
  jwks?: { keys: JWK[] };
  servers: string[];
  scopes: string[];
  expiresAt: Date;
  /** Who creates it (sees its secret, chooses its key): recorded, never its calls' approver. */
  createdBy?: KeyOwner | null;
}

export interface CreatedMachineClient {
  client: MachineClient;
  /** client_secret_basic only: the secret, to be shown once and never again. */
  clientSecret: string | null;
}

export async function createMachineClient(
  store: Store,
  sealKey: Buffer,
  input: NewMachineClient,
  now: number = Date.now(),
): Promise<CreatedMachineClient> {
  const name = input.name.trim();
  if (name === "" || name.length > 100) throw new MachineClientError("--name is required (1-100 characters)");
  if (!MACHINE_CLIENT_AUTH_METHODS.includes(input.authMethod)) {
    throw new MachineClientError(`--auth must be one of ${MACHINE_CLIENT_AUTH_METHODS.join(", ")}`);
  }
  if (input.authMethod === "private_key_jwt" && input.jwks === undefined) {
    throw new MachineClientError(
      "--auth private_key_jwt needs the client's public key: --jwks or --public-key",
    );
  }
  if (input.authMethod !== "private_key_jwt" && input.jwks !== undefined) {
    throw new MachineClientError("--jwks / --public-key are for --auth private_key_jwt only");
  }
  if (input.servers.length === 0) throw new MachineClientError("--servers: at least one server is needed");
  if (input.expiresAt.getTime() <= now) throw new MachineClientError("--expires must be in the future");

  const clientId = `mc_${randomBytes(16).toString("base64url")}`;
  const clientSecret =
    input.authMethod === "client_secret_basic" ? randomBytes(32).toString("base64url") : null;
  const row: OAuthMachineClientsTable = {
    client_id: clientId,
    name,
    auth_method: input.authMethod,
    secret_sealed: clientSecret === null ? null : seal(sealKey, clientSecret, clientId),
    jwks: input.jwks === undefined ? null : JSON.stringify(input.jwks),
    servers: JSON.stringify([...new Set(input.servers)]),
    scopes: JSON.stringify([...new Set(input.scopes)]),
    created_at: now,
    expires_at: input.expiresAt.getTime(),
    revoked_at: null,
    created_by: input.createdBy?.principal ?? null,
    created_by_name: input.createdBy?.name ?? null,
  };
  await store.mutateCredentials(async (trx: Transaction<OAuthDatabase>) => {
    await trx.insertInto("oauth_machine_clients").values(row).execute();
    return true;
  });
  return { client: rowToClient(row), clientSecret };
}

export async function findMachineClient(
  db: Kysely<OAuthDatabase>,
  clientId: string,
): Promise<MachineClient | undefined> {
  if (!isMachineClientId(clientId)) return undefined;
  const row = await db
    .selectFrom("oauth_machine_clients")
    .selectAll()
    .where("client_id", "=", clientId)
    .executeTakeFirst();
  return row === undefined ? undefined : rowToClient(row);
}

/** Oldest first; never a secret. */
export async function listMachineClients(db: Kysely<OAuthDatabase>): Promise<MachineClient[]> {
  const rows = await db
    .selectFrom("oauth_machine_clients")
    .selectAll()
    .orderBy("created_at")
    .orderBy("client_id")
    .execute();
  return rows.map(rowToClient);
}

/** Revokes the client (tokens it holds are refused from the next request); false if unknown or already revoked. */
export function revokeMachineClient(store: Store, clientId: string, at: Date = new Date()): Promise<boolean> {
  return store.mutateCredentials(async (trx: Transaction<OAuthDatabase>) => {
    const res = await trx
      .updateTable("oauth_machine_clients")
      .set({ revoked_at: at.getTime() })
      .where("client_id", "=", clientId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return res.numUpdatedRows > 0n;
  });
}

/** What `list` and `create` print: never a secret. */
export function describeMachineClient(c: MachineClient, now: number = Date.now()): Record<string, unknown> {
  return {
    clientId: c.clientId,
    name: c.name,
    authMethod: c.authMethod,
    status: c.revokedAt !== null ? "revoked" : c.expiresAt.getTime() <= now ? "expired" : "active",
    servers: c.servers,
    scopes: c.scopes,
    keys: c.jwks?.keys.map((k) => k.kid) ?? [],
    createdAt: c.createdAt.toISOString(),
    expiresAt: c.expiresAt.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
  };
}

/** The parts of oidc-provider's request context {@link defaultMachineClientScope} reads and sets. */
export interface TokenRequestContext {
  oidc: { route?: string; params?: Record<string, unknown> };
}

/**
 * RFC 6749 §3.3 default for a client_credentials token request that names no `scope`: the
 * authorization server "MUST either process the request using a pre-defined default value or
 * fail the request". oidc-provider would issue a token with no scope at all, which every MCP
 * server requiring a scope refuses (403 insufficient_scope). The default is `allowed`: the
 * scopes this machine client was created with that the requested resource uses (the caller
 * passes them already narrowed to the resource). Called while oidc-provider resolves the
 * resource, before it reads the requested scopes; a request that names scopes is untouched.
 */
export function defaultMachineClientScope(ctx: TokenRequestContext, allowed: readonly string[]): void {
  const { route, params } = ctx.oidc;
  if (route !== "token" || params === undefined || params.grant_type !== "client_credentials") return;
  if (typeof params.scope === "string" && params.scope.trim() !== "") return;
  if (allowed.length > 0) params.scope = allowed.join(" ");
}

/**
 * The RFC 7591 metadata oidc-provider loads the client from: client_credentials and RFC 8693
 * token exchange (./tokenExchange.ts) only, no
 * redirect URIs or response types, the operator's auth method (and nothing symmetric for
 * private_key_jwt), the allowed scopes as the client's `scope` allow-list (only those the
 * authorization server knows, so a scope removed from the config cannot invalidate it).
 */
function oidcMetadata(
  client: MachineClient,
  secret: string | null,
  knownScopes: ReadonlySet<string>,
): AdapterPayload {
  const scope = client.scopes.filter((s) => knownScopes.has(s)).join(" ");
  return {
    client_id: client.clientId,
    client_name: client.name,
    grant_types: ["client_credentials", TOKEN_EXCHANGE_GRANT],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: client.authMethod,
    ...(scope !== "" ? { scope } : {}),
    ...(client.jwks !== null ? { jwks: client.jwks } : {}),
    ...(secret !== null
      ? { client_secret: secret, client_secret_expires_at: Math.floor(client.expiresAt.getTime() / 1000) }
      : {}),
  };
}

/**
 * Wraps oidc-provider's adapter so that model `Client` finds machine clients in their own
 * table: a machine-shaped id is looked up there only (never among DCR rows), and a revoked
 * or expired client is "not found", so oidc-provider answers `invalid_client`. oidc-provider
 * asks the adapter on every client authentication, so a revocation by another process
 * applies to the very next token request.
 */
export function withMachineClients(
  Base: OidcAdapterClass,
  db: Kysely<OAuthDatabase>,
  sealKey: Buffer,
  knownScopes: ReadonlySet<string>,
  now: () => number = Date.now,
): OidcAdapterClass {
  return class MachineClientAdapter extends (Base as new (model: string) => OidcAdapter) {
    constructor(private readonly modelName: string) {
      super(modelName);
    }

    override async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.modelName !== "Client" || !isMachineClientId(id)) return super.find(id);
      const row = await db
        .selectFrom("oauth_machine_clients")
        .selectAll()
        .where("client_id", "=", id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const client = rowToClient(row);
      if (machineClientProblem(client, now()) !== null) return undefined;
      const secret = row.secret_sealed === null ? null : unseal(sealKey, row.secret_sealed, row.client_id);
      return oidcMetadata(client, secret, knownScopes);
    }

    override async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      // Machine clients change only through the CLI; nothing may write a Client row under their ids.
      if (this.modelName === "Client" && isMachineClientId(id)) {
        throw new Error("machine clients are managed with `portcullis clients`, not stored as Client rows");
      }
      return super.upsert(id, payload, expiresIn);
    }
  };
}
