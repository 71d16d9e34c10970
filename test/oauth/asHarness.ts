/**
 * Test harness for the built-in authorization server: a SQLite store in a temp directory,
 * the AS mounted on a plain node:http server on 127.0.0.1:0, a local user, and helpers that
 * drive registration, the sign-in and consent forms (fetch + cookie jar) and the token
 * endpoint like an MCP client would.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { AuditWriter } from "../../src/audit/writer.js";
import type { AbuseLimitSettings } from "../../src/oauth/abuseLimits.js";
import { type AuthorizationServer, createAuthorizationServer } from "../../src/oauth/authorizationServer.js";
import { oauthDatabase } from "../../src/oauth/database.js";
import { addUser } from "../../src/oauth/users.js";
import { openStore } from "../../src/store/open.js";
import type { Store } from "../../src/store/types.js";
import type { CookieJar } from "../fixtures/oidc-idp.js";
import { signInAndConsent } from "../helpers/browserLogin.js";

export const USER = { username: "alice", password: "correct horse battery staple" };
/** Registered redirect URI; native clients may use any port on it (RFC 8252 §7.3). */
export const REDIRECT = "http://127.0.0.1/callback";
export const REDIRECT_WITH_PORT = "http://127.0.0.1:49152/callback";

export interface Harness {
  issuer: string;
  /** Two MCP endpoints: [0] github (mcp:tools, mcp:tools:read), [1] jira (mcp:tools). */
  resources: [string, string];
  as: AuthorizationServer;
  store: Store;
  /** The chained audit writer the AS records through. */
  audit: AuditWriter;
  close(): Promise<void>;
}

/** What the audit writer calls on its store: an outage of the audit trail fails them all. */
const AUDIT_WRITES = new Set<string | symbol>([
  "appendAuditChain",
  "auditChainTail",
  "listAuditCheckpoints",
  "auditRegistryTail",
]);

/** Makes the audit writer's store fail (an outage of the audit trail only) while `down`. */
export interface AuditOutage {
  down: boolean;
}

export async function startHarness(
  opts: {
    accessTokenTtlSeconds?: number;
    limits?: AbuseLimitSettings;
    /** The audit writer's backlog bound (default: the writer's). */
    maxPendingRecords?: number;
    auditOutage?: AuditOutage;
  } = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-as-"));
  const store = await openStore(join(dir, "db.sqlite"));
  await addUser(
    oauthDatabase(store),
    { ...USER, email: "alice@example.test", groups: ["staff"] },
    { N: 2 ** 10, r: 8, p: 1 },
  );
  const secret = randomBytes(32);
  const log = pino({ level: "silent" });
  const outage = opts.auditOutage;
  const auditStore =
    outage === undefined
      ? store
      : (new Proxy(store, {
          get(target, prop, receiver) {
            if (AUDIT_WRITES.has(prop) && outage.down)
              return () =>
                Promise.reject(Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" }));
            const v = Reflect.get(target, prop, receiver);
            return typeof v === "function" ? v.bind(target) : v;
          },
        }) as Store);
  const audit = await AuditWriter.open(
    auditStore,
    log,
    {
      flushIntervalMs: 10,
      maxBatch: 100,
      ...(opts.maxPendingRecords === undefined ? {} : { maxPendingRecords: opts.maxPendingRecords }),
      checkpointEvery: 1000,
      checkpointIntervalSeconds: 3600,
      arguments: "redacted",
    },
    secret,
  );
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const resources: [string, string] = [`${issuer}/mcp/github`, `${issuer}/mcp/jira`];
  const as = await createAuthorizationServer({
    issuer,
    resources: [
      {
        url: resources[0],
        scopes: ["mcp:tools", "mcp:tools:read"],
        // Any tool needs mcp:tools:read; delete_repo needs the broader mcp:tools.
        access: { scopes: ["mcp:tools:read"], tools: { delete_repo: ["mcp:tools"] } },
      },
      { url: resources[1], scopes: ["mcp:tools"] },
    ],
    store,
    secret,
    environment: "dev",
    ...(opts.accessTokenTtlSeconds === undefined
      ? {}
      : { accessTokenTtlSeconds: opts.accessTokenTtlSeconds }),
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    log,
    audit,
  });
  server.on("request", (req, res) => {
    const path = new URL(req.url ?? "/", issuer).pathname;
    if (as.owns(path)) as.handle(req, res);
    else {
      res.writeHead(404);
      res.end();
    }
  });
  return {
    issuer,
    resources,
    as,
    store,
    audit,
    async close() {
      await as.close();
      await audit.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function registerClient(h: Harness, metadata: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${h.issuer}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Test Agent",
      application_type: "native",
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      ...metadata,
    }),
  });
  const body = (await res.json()) as { client_id?: string };
  if (res.status !== 201 || body.client_id === undefined) {
    throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.client_id;
}

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

export function authorizationUrl(
  h: Harness,
  clientId: string,
  p: Pkce | null,
  extra: Record<string, string> = {},
): URL {
  const url = new URL(`${h.issuer}/auth`);
  const params: Record<string, string> = {
    client_id: clientId,
    response_type: "code",
    redirect_uri: REDIRECT_WITH_PORT,
    scope: "mcp:tools",
    resource: h.resources[0],
    state: randomBytes(8).toString("hex"),
    ...(p === null ? {} : { code_challenge: p.challenge, code_challenge_method: "S256" }),
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

export { browse } from "../helpers/browserLogin.js";

/**
 * Follows the authorization request like a browser: signs in, consents (when asked), and
 * returns the redirect back to the client (code, state, iss — or error).
 */
export function authorize(
  start: URL,
  opts: { jar?: CookieJar; decision?: "allow" | "deny"; user?: typeof USER; stopAt?: string } = {},
): Promise<URL> {
  const stopAt = opts.stopAt ?? "http://127.0.0.1:49152/";
  return signInAndConsent(start, {
    user: opts.user ?? USER,
    decision: opts.decision ?? "allow",
    ...(opts.jar === undefined ? {} : { jar: opts.jar }),
    stopAt: (url) => url.href.startsWith(stopAt),
  });
}

export interface TokenResponse {
  status: number;
  body: Record<string, unknown>;
}

export async function tokenRequest(h: Harness, params: Record<string, string>): Promise<TokenResponse> {
  const res = await fetch(`${h.issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Registration, sign-in, consent and code exchange; returns the token response. */
export async function fullFlow(
  h: Harness,
  clientId?: string,
): Promise<{ clientId: string; tokens: Record<string, unknown>; code: string; verifier: string }> {
  const id = clientId ?? (await registerClient(h));
  const p = pkce();
  const back = await authorize(authorizationUrl(h, id, p));
  const code = back.searchParams.get("code");
  if (code === null) throw new Error(`no code: ${back.href}`);
  const res = await tokenRequest(h, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT_WITH_PORT,
    client_id: id,
    code_verifier: p.verifier,
    resource: h.resources[0],
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { clientId: id, tokens: res.body, code, verifier: p.verifier };
}
