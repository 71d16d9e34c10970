/**
 * The authorization server's own pages: sign-in and consent for an authorization request
 * (OAuth 2.1 §4.1.1 "the authorization server authenticates the resource owner and obtains
 * an authorization decision"), at /oauth/interaction/:uid. Server-rendered, no script at
 * all, a strict Content-Security-Policy and `frame-ancestors 'none'` against clickjacking
 * (RFC 6819 §4.4.1.9), a CSRF token bound to the interaction, and consent that names the
 * client, where it will send the user back, the scopes and the resource (MCP security best
 * practices, "Confused Deputy Problem": consent per client, shown before redirecting).
 * The pages' frame and inline stylesheet are in ./interactionPages.ts; the client is named by
 * ./clientDisplayName.ts. Every sign-in attempt (throttled ones too) and every consent answer
 * is an audit record (./signInAudit.ts); a failed one shows its decision id inline.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { mac, macValid } from "../core/keyDerivation.js";
import type { AbuseLimits } from "./abuseLimits.js";
import type { ResourceAccess } from "./consentSummary.js";
import type { OAuthDatabase } from "./database.js";
import { sendPage } from "./interactionPages.js";
import { consentPage, type LoginView, listOf, loginPage } from "./interactionViews.js";
import type { OidcInteraction, OidcProvider } from "./oidcProvider.js";
import type { SignInAudit } from "./signInAudit.js";
import { checkPassword, findUser } from "./users.js";

const FORM_LIMIT = 8 * 1024;

export interface InteractionDeps {
  provider: OidcProvider;
  db: Kysely<OAuthDatabase>;
  /** Key for the interaction-bound CSRF token. */
  csrfKey: Buffer;
  log: Logger;
  /** Password sign-in with local users (default true). */
  localUsers?: boolean;
  /** Sign-in delegated to an upstream OpenID Provider (./federatedSignIn.ts). */
  upstream?: {
    readonly name: string;
    begin(uid: string, req: IncomingMessage, res: ServerResponse): Promise<void>;
  } | null;
  /** The scopes an MCP endpoint requires, to show the user what a consent unlocks. */
  resourceAccess?: (resource: string) => ResourceAccess | undefined;
  /** Limits on password guessing (./abuseLimits.ts); none when absent. */
  limits?: AbuseLimits;
  /** Where every sign-in and consent decision is recorded (./signInAudit.ts). */
  audit: SignInAudit;
}

function csrfToken(key: Buffer, uid: string): string {
  return mac(key, `interaction-csrf:${uid}`);
}

function csrfValid(key: Buffer, uid: string, presented: string | null): boolean {
  return presented !== null && macValid(key, `interaction-csrf:${uid}`, presented);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > FORM_LIMIT) return null;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

/** Remembers the grant holding a user's consent for a client (oidc-provider's loadExistingGrant). */
export async function rememberConsent(
  db: Kysely<OAuthDatabase>,
  accountId: string,
  clientId: string,
  grantId: string,
): Promise<void> {
  const row = { account_id: accountId, client_id: clientId, grant_id: grantId, updated_at: Date.now() };
  await db
    .insertInto("oauth_consents")
    .values(row)
    .onConflict((oc) =>
      oc.columns(["account_id", "client_id"]).doUpdateSet({ grant_id: grantId, updated_at: row.updated_at }),
    )
    .execute();
}

export async function rememberedGrantId(
  db: Kysely<OAuthDatabase>,
  accountId: string,
  clientId: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom("oauth_consents")
    .select("grant_id")
    .where("account_id", "=", accountId)
    .where("client_id", "=", clientId)
    .executeTakeFirst();
  return row?.grant_id;
}

/** The answer while the audit trail cannot take a decision's record: try again shortly, nothing decided. */
function auditBusy(res: ServerResponse): void {
  res.setHeader("retry-after", "5");
  sendPage(
    res,
    503,
    "Try again shortly",
    "<h1>Sign-in is briefly unavailable</h1><p>Try again in a few seconds.</p>",
  );
}

/** Serves GET /oauth/interaction/:uid and …/upstream, and POST …/login and …/confirm. */
export async function handleInteraction(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { provider, csrfKey, audit } = deps;
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const match = /^\/oauth\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|confirm|upstream))?$/.exec(path);
  if (match === null) return sendPage(res, 404, "Not found", "<h1>Not found</h1>");
  const uid = match[1] ?? "";
  const action = match[2];
  const upstream = deps.upstream ?? null;
  const localUsers = deps.localUsers ?? true;
  if (action === "upstream" && upstream === null)
    return sendPage(res, 404, "Not found", "<h1>Not found</h1>");
  const expected = action === undefined || action === "upstream" ? "GET" : "POST";
  if (req.method !== expected) {
    res.setHeader("allow", expected);
    return sendPage(res, 405, "Method not allowed", "<h1>Method not allowed</h1>");
  }
  if (action === "login" && !localUsers)
    return sendPage(res, 403, "Forbidden", "<h1>Password sign-in is not available here</h1>");

  let details: OidcInteraction;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return sendPage(
      res,
      400,
      "Sign-in expired",
      "<h1>This sign-in attempt has expired</h1><p>Start again from your application.</p>",
    );
  }
  if (details.uid !== uid) {
    return sendPage(res, 400, "Sign-in mismatch", "<h1>This page belongs to another sign-in attempt</h1>");
  }
  const csrf = csrfToken(csrfKey, uid);
  const client = await audit.client(
    provider,
    String(details.params.client_id ?? ""),
    String(details.params.redirect_uri ?? ""),
  );
  const login = (username: string, error: LoginView["error"]): string =>
    loginPage({
      uid,
      csrf,
      clientName: client.name,
      username,
      error,
      localUsers,
      upstreamName: upstream?.name ?? null,
    });

  if (action === "upstream" || (action === undefined && details.prompt.name === "login" && !localUsers)) {
    if (details.prompt.name !== "login" || upstream === null)
      return sendPage(res, 400, "Unexpected", "<h1>Already signed in</h1>");
    return upstream.begin(uid, req, res);
  }
  if (action === undefined) {
    if (details.prompt.name === "login") return sendPage(res, 200, "Sign in", login("", null));
    if (details.prompt.name === "consent")
      return sendPage(res, 200, "Authorize access", await consentPage(deps, details, csrf));
    return sendPage(res, 400, "Unsupported", "<h1>Unsupported sign-in step</h1>");
  }

  const form = await readForm(req);
  if (form === null || !csrfValid(csrfKey, uid, form.get("csrf"))) {
    return sendPage(res, 403, "Forbidden", "<h1>The form was not submitted from this page</h1>");
  }
  // The socket's peer, not X-Forwarded-For: the gateway has no trusted-proxy setting yet, and
  // a client-supplied header would let a guesser pick a fresh "address" for every attempt.
  // Behind a reverse proxy every user therefore shares the proxy's per-address budget.
  const address = req.socket.remoteAddress ?? "unknown";
  // Nothing is decided that could not be recorded (the attempt is counted as unrecorded).
  if (!audit.admit()) return auditBusy(res);

  if (action === "login") {
    if (details.prompt.name !== "login")
      return sendPage(res, 400, "Unexpected", "<h1>Already signed in</h1>");
    const username = form.get("username") ?? "";
    // The typed username is never logged nor recorded unless it names an account: people
    // paste passwords into it. A keyed hash still lets an operator see that the attempts aim
    // at one account.
    const account = deps.limits?.accountRef(username) ?? null;
    const gate = (await deps.limits?.beginSignIn(username, address)) ?? null;
    if (gate !== null && !gate.allowed) {
      const { retryAfter } = gate;
      deps.log.warn(
        { event: "oauth.login_throttled", account, address, retryAfter },
        "local sign-in throttled",
      );
      // Recorded without looking the account up: the same work whether or not it exists.
      audit.record({
        event: "sign_in.failed",
        decision: "deny",
        reason: `password sign-in refused: throttled (retry after ${retryAfter} s), password not checked`,
        principal: null,
        username: null,
        account,
        client,
        address,
        extra: { outcome: "throttled", retryAfter },
      });
      // The same answer whether or not the username exists, and the password is not checked.
      const minutes = Math.ceil(retryAfter / 60);
      res.setHeader("retry-after", String(retryAfter));
      return sendPage(
        res,
        429,
        "Sign in",
        login(username, `Too many attempts, try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`),
      );
    }
    const check = await checkPassword(deps.db, username, form.get("password") ?? "");
    const known = check.user;
    const facts = {
      principal: known === null ? null : audit.principal(known.id),
      username: known?.username ?? null,
      account,
      client,
      address,
    };
    if (check.outcome !== "signed_in") {
      await gate?.failed();
      deps.log.info({ event: "oauth.login_failed", account, address }, "local sign-in refused");
      audit.record({
        ...facts,
        event: "sign_in.failed",
        decision: "deny",
        reason: `password sign-in refused: ${check.outcome.replace("_", " ")}`,
        extra: { outcome: check.outcome, amr: "pwd" },
      });
      return sendPage(res, 401, "Sign in", login(username, "Invalid username or password."));
    }
    await gate?.succeeded();
    audit.record({
      ...facts,
      event: "sign_in.succeeded",
      decision: "allow",
      reason: `${check.user.username} signed in with a password to ${client.name}`,
      extra: { outcome: "signed_in", amr: "pwd" },
    });
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: check.user.id, amr: ["pwd"] } },
      { mergeWithLastSubmission: false },
    );
  }

  // action === "confirm"
  if (details.prompt.name !== "consent")
    return sendPage(res, 400, "Unexpected", "<h1>Nothing to confirm</h1>");
  const accountId = details.session?.accountId;
  const scopes = listOf(details.params.scope);
  const resources = listOf(details.params.resource);
  const consentFacts = {
    principal: accountId === undefined ? null : audit.principal(accountId),
    username: accountId === undefined ? null : ((await findUser(deps.db, accountId))?.username ?? accountId),
    client,
    address,
  };
  if (form.get("decision") !== "allow") {
    audit.record({
      ...consentFacts,
      event: "consent.denied",
      decision: "deny",
      reason: `consent to ${client.name} denied by the user`,
      extra: { scopes, resources },
    });
    return provider.interactionFinished(
      req,
      res,
      { error: "access_denied", error_description: "the user denied the request" },
      { mergeWithLastSubmission: false },
    );
  }
  if (accountId === undefined) return sendPage(res, 400, "Sign-in expired", "<h1>Sign in again</h1>");
  const grant =
    (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
    new provider.Grant({ accountId, clientId: client.id });
  const prompt = details.prompt.details;
  const oidcScopes = listOf(prompt.missingOIDCScope);
  if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(" "));
  const claims = listOf(prompt.missingOIDCClaims);
  if (claims.length > 0) grant.addOIDCClaims(claims);
  const resourceScopes = prompt.missingResourceScopes;
  if (typeof resourceScopes === "object" && resourceScopes !== null) {
    for (const [indicator, list] of Object.entries(resourceScopes)) {
      grant.addResourceScope(indicator, listOf(list).join(" "));
    }
  }
  const grantId = await grant.save();
  await rememberConsent(deps.db, accountId, client.id, grantId);
  audit.record({
    ...consentFacts,
    event: "consent.granted",
    decision: "allow",
    reason: `consent to ${client.name} granted by ${consentFacts.username}`,
    extra: { scopes, resources },
  });
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
