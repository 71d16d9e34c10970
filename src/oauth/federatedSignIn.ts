/**
 * Sign-in at the built-in authorization server delegated to an upstream OpenID Provider
 * (./federation.ts does the OpenID Connect part). This module binds the upstream round trip
 * to the interaction and the browser that started it:
 *
 * - begin: the pending login (state, nonce, PKCE verifier) is kept server side in
 *   `oauth_payloads` (model `UpstreamLogin`, keyed by a hash of `state`, sealed, 10 minutes), together
 *   with the interaction uid and the hash of a random browser-binding value held in an
 *   HttpOnly, SameSite=Lax cookie scoped to the callback path (RFC 9700 §4.7.1 — CSRF
 *   protection: `state` bound to the user agent; OpenID Connect Core §15.5.2 nonce).
 * - callback (`/oauth/callback`): the state must name a pending login, the browser must hold
 *   its binding cookie (otherwise it is a login CSRF: someone else's authorization response
 *   replayed in this browser), and the pending login is consumed once, atomically, before
 *   the code is redeemed (a replayed callback is refused). The `iss` check (RFC 9207) and
 *   the ID token checks are in ./federation.ts. Only then is the interaction that started
 *   it finished with the federated account; oidc-provider's resume cookie then ties the
 *   rest of the authorization request to the same browser.
 *
 * A federated user becomes an `oauth_users` row with id `fed:<issuer hash>#<user id>` whose
 * email and groups are refreshed from the ID token at every sign-in, so `findAccount` and the
 * access token's `email` and `groups` claims come from the upstream.
 *
 * Every callback is a sign-in decision and an audit record (`sign_in.succeeded` or
 * `sign_in.failed` with its precise reason: refused upstream, login CSRF, replay, disabled
 * account, …); the user sees a generic page.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { OAuthDatabase } from "./database.js";
import {
  type FederatedIdentity,
  FederationError,
  type PendingLogin,
  type UpstreamLogin,
} from "./federation.js";
import { sendPage } from "./interactionPages.js";
import type { OidcInteractionRecord, OidcProvider } from "./oidcProvider.js";
import type { SignInAudit } from "./signInAudit.js";
import { type ArtefactKeys, sealPayload, unsealPayload } from "./storedArtefacts.js";

export const UPSTREAM_CALLBACK_PATH = "/oauth/callback";
const MODEL = "UpstreamLogin";
const PENDING_TTL_SECONDS = 600;
/** Stored instead of a password hash: not `scrypt$…`, so no password ever matches it. */
const NO_PASSWORD = "federated";
const MAX_SUBJECT_LENGTH = 255;

export interface FederatedSignInDeps {
  /** Read at each use: the authorization server replaces its provider when signing keys rotate. */
  provider: OidcProvider;
  db: Kysely<OAuthDatabase>;
  upstream: UpstreamLogin;
  /** Shown on the sign-in page: "Sign in with <name>". */
  name: string;
  /** The gateway's issuer (origin), to rebuild the callback URL. */
  issuer: string;
  /** https issuer: the binding cookie is `Secure` and `__Secure-` prefixed. */
  secure: boolean;
  log: Logger;
  now?: () => number;
  /** The pending login (PKCE verifier, nonce, interaction uid) is sealed at rest (./storedArtefacts.ts). */
  keys: ArtefactKeys;
  /** Where every callback's decision is recorded (./signInAudit.ts). */
  audit: SignInAudit;
}

export interface FederatedSignIn {
  readonly name: string;
  /** Starts the upstream sign-in for interaction `uid`: 303 to the upstream authorization endpoint. */
  begin(uid: string, req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Serves GET /oauth/callback. */
  handleCallback(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

interface StoredPending {
  uid: string;
  nonce: string;
  codeVerifier: string;
  /** base64url SHA-256 of the browser-binding cookie value. */
  binding: string;
}

function sha256(value: string): string {
  return createHash("sha256").update(value).digest("base64url");
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readCookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The account id of a federated identity: qualified by (a hash of) the upstream issuer. */
export function federatedAccountId(identity: Pick<FederatedIdentity, "issuer" | "subject">): string {
  return `fed:${sha256(identity.issuer).slice(0, 16)}#${identity.subject}`;
}

/**
 * Creates or refreshes the user row of a federated identity; returns its account id, or null
 * when an administrator disabled that account.
 */
export async function upsertFederatedUser(
  db: Kysely<OAuthDatabase>,
  identity: FederatedIdentity,
  at: number = Date.now(),
): Promise<string | null> {
  const id = federatedAccountId(identity);
  const groups = JSON.stringify(identity.groups);
  await db
    .insertInto("oauth_users")
    .values({
      id,
      username: id,
      password_hash: NO_PASSWORD,
      email: identity.email,
      groups,
      created_at: at,
      disabled_at: null,
    })
    .onConflict((oc) => oc.column("id").doUpdateSet({ email: identity.email, groups }))
    .execute();
  const row = await db
    .selectFrom("oauth_users")
    .select("disabled_at")
    .where("id", "=", id)
    .executeTakeFirstOrThrow();
  return row.disabled_at === null ? id : null;
}

export function federatedSignIn(deps: FederatedSignInDeps): FederatedSignIn {
  const { db, upstream, log } = deps;
  const now = deps.now ?? Date.now;
  const cookieName = deps.secure ? "__Secure-oauth_upstream" : "oauth_upstream";

  const { audit } = deps;
  /** The client the interaction is for, once the interaction is known. */
  type Client = { id: string; name: string };
  const clientOf = (interaction: OidcInteractionRecord): Promise<Client> =>
    audit.client(
      deps.provider,
      String(interaction.params?.client_id ?? ""),
      String(interaction.params?.redirect_uri ?? ""),
    );
  const failed = (
    req: IncomingMessage,
    detail: string,
    facts: { client?: Client; accountId?: string; outcome?: string } = {},
  ) =>
    audit.record({
      event: "sign_in.failed",
      decision: "deny",
      reason: `sign-in through ${deps.name} refused: ${detail}`,
      principal: facts.accountId === undefined ? null : audit.principal(facts.accountId),
      username: facts.accountId ?? null,
      client: facts.client ?? null,
      address: req.socket.remoteAddress ?? null,
      extra: { outcome: facts.outcome ?? "refused", amr: "fed", upstream: upstream.issuer },
    });

  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    reason: string,
    detail: string,
    facts: { client?: Client; accountId?: string; outcome?: string } = {},
  ) => {
    log.warn({ event: "oauth.upstream_login_refused", reason: detail }, "upstream sign-in refused");
    const decisionId = failed(req, detail, facts);
    return sendPage(
      res,
      status,
      "Sign-in failed",
      `<h1>Sign-in failed</h1><p class="error" role="alert">${reason} <span class="muted">Reference <code>${decisionId}</code></span></p><p>Start again from your application.</p>`,
    );
  };

  const finish = async (
    res: ServerResponse,
    interaction: OidcInteractionRecord,
    result: Record<string, unknown>,
  ): Promise<void> => {
    interaction.result = result;
    await interaction.save(Math.max(1, interaction.exp - Math.floor(now() / 1000)));
    res.writeHead(303, {
      location: interaction.returnTo,
      "cache-control": "no-store",
      "content-length": "0",
    });
    res.end();
  };

  return {
    name: deps.name,

    async begin(uid: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
      // One binding value per browser, reused so that two sign-ins in two tabs both work.
      const existing = readCookie(req, cookieName);
      const binding =
        existing !== null && /^[A-Za-z0-9_-]{43}$/.test(existing)
          ? existing
          : randomBytes(32).toString("base64url");
      const { url, pending } = await upstream.begin();
      const storedId = sha256(pending.state);
      const stored: StoredPending = {
        uid,
        nonce: pending.nonce,
        codeVerifier: pending.codeVerifier,
        binding: sha256(binding),
      };
      await db
        .insertInto("oauth_payloads")
        .values({
          model: MODEL,
          id: storedId,
          payload: sealPayload(deps.keys, MODEL, storedId, JSON.stringify(stored)),
          grant_id: null,
          uid: null,
          user_code: null,
          expires_at: now() + PENDING_TTL_SECONDS * 1000,
          consumed_at: null,
        })
        .execute();
      const cookie = [
        `${cookieName}=${binding}`,
        `Path=${UPSTREAM_CALLBACK_PATH}`,
        `Max-Age=${PENDING_TTL_SECONDS}`,
        "HttpOnly",
        "SameSite=Lax",
        ...(deps.secure ? ["Secure"] : []),
      ].join("; ");
      res.writeHead(303, {
        location: url.href,
        "set-cookie": cookie,
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "content-length": "0",
      });
      res.end();
    },

    async handleCallback(req: IncomingMessage, res: ServerResponse): Promise<void> {
      if (req.method !== "GET") {
        res.setHeader("allow", "GET");
        return sendPage(res, 405, "Method not allowed", "<h1>Method not allowed</h1>");
      }
      // Nothing is decided that could not be recorded (the attempt is counted as unrecorded).
      if (!audit.admit()) {
        res.setHeader("retry-after", "5");
        return sendPage(res, 503, "Try again shortly", "<h1>Sign-in is briefly unavailable</h1>");
      }
      const callback = new URL(req.url ?? "/", deps.issuer);
      const state = callback.searchParams.get("state");
      if (state === null || state === "" || state.length > 512) {
        return refuse(
          req,
          res,
          400,
          "The identity provider's answer is incomplete.",
          "callback without state",
        );
      }
      const id = sha256(state);
      const row = await db
        .selectFrom("oauth_payloads")
        .select(["payload", "expires_at"])
        .where("model", "=", MODEL)
        .where("id", "=", id)
        .executeTakeFirst();
      if (row === undefined || (row.expires_at !== null && Number(row.expires_at) <= now())) {
        return refuse(
          req,
          res,
          400,
          "This sign-in attempt is unknown or has expired.",
          "callback state names no pending login",
        );
      }
      let pending: StoredPending;
      try {
        pending = JSON.parse(unsealPayload(deps.keys, MODEL, id, row.payload)) as StoredPending;
      } catch {
        return refuse(
          req,
          res,
          400,
          "This sign-in attempt is unknown or has expired.",
          "pending login cannot be unsealed (another server secret, or stored before sealing)",
        );
      }
      const binding = readCookie(req, cookieName);
      if (binding === null || !sameHash(sha256(binding), pending.binding)) {
        return refuse(
          req,
          res,
          403,
          "This sign-in was not started in this browser.",
          "callback state belongs to another browser (login CSRF)",
        );
      }
      // Consume before redeeming the code: of two concurrent or replayed callbacks, one wins.
      const consumed = await db
        .updateTable("oauth_payloads")
        .set({ consumed_at: now() })
        .where("model", "=", MODEL)
        .where("id", "=", id)
        .where("consumed_at", "is", null)
        .executeTakeFirst();
      if (consumed.numUpdatedRows !== 1n) {
        return refuse(req, res, 400, "This sign-in answer was already used.", "callback replayed");
      }
      const interaction = await deps.provider.Interaction.find(pending.uid);
      if (interaction === undefined || interaction.prompt?.name !== "login") {
        return refuse(
          req,
          res,
          400,
          "This sign-in attempt has expired.",
          "the interaction is gone or past sign-in",
        );
      }
      const client = await clientOf(interaction);
      if (callback.searchParams.has("error")) {
        const error = callback.searchParams.get("error")?.slice(0, 64) ?? "";
        log.info(
          { event: "oauth.upstream_login_refused", reason: error },
          "the upstream identity provider did not sign the user in",
        );
        failed(req, `the identity provider answered ${error}`, { client, outcome: "upstream_refused" });
        return finish(res, interaction, {
          error: "access_denied",
          error_description: "the identity provider did not sign the user in",
        });
      }
      let identity: FederatedIdentity;
      try {
        const login: PendingLogin = { state, nonce: pending.nonce, codeVerifier: pending.codeVerifier };
        identity = await upstream.complete(callback, login);
      } catch (err) {
        if (!(err instanceof FederationError)) throw err;
        return refuse(req, res, 400, "The identity provider's answer was not accepted.", err.message, {
          client,
        });
      }
      if (identity.subject.length > MAX_SUBJECT_LENGTH) {
        return refuse(
          req,
          res,
          400,
          "The identity provider's answer was not accepted.",
          "user id claim too long",
          {
            client,
          },
        );
      }
      const accountId = await upsertFederatedUser(db, identity, now());
      if (accountId === null) {
        return refuse(
          req,
          res,
          403,
          "This account is disabled.",
          `federated account disabled: ${identity.id}`,
          {
            client,
            accountId: federatedAccountId(identity),
            outcome: "account_disabled",
          },
        );
      }
      log.info({ event: "oauth.upstream_login", accountId }, "user signed in through the upstream provider");
      audit.record({
        event: "sign_in.succeeded",
        decision: "allow",
        reason: `${accountId} signed in through ${deps.name} to ${client.name}`,
        principal: audit.principal(accountId),
        username: accountId,
        client,
        address: req.socket.remoteAddress ?? null,
        extra: { outcome: "signed_in", amr: "fed", upstream: upstream.issuer, email: identity.email },
      });
      return finish(res, interaction, { login: { accountId, amr: ["fed"] } });
    },
  };
}
