/**
 * The admin web console at /console: routes, sign-in gate and actions. Every page needs a
 * console session (./session.ts) of a user who is, on this request, in one of
 * `console.adminGroups`; every POST needs the session's CSRF token and, when the browser
 * sends one, a same-origin `Origin`. Actions reuse the modules the CLI uses (key lifecycle,
 * users, machine clients, ReviewGate.decide) and are audited.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { errors as joseErrors } from "jose";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { serverSecretTrust } from "../audit/trust.js";
import { verifyAuditLog } from "../audit/verify.js";
import type { AuditWriter } from "../audit/writer.js";
import { issueKey, KeyInputError, rotateKey } from "../authn/keyLifecycle.js";
import { explainInput } from "../authz/policy/cases.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import { generatePassword } from "../cli/users.js";
import { ConfigError } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { type OAuthDatabase, oauthDatabase } from "../oauth/database.js";
import { listMachineClients, revokeMachineClient } from "../oauth/machineClients.js";
import { addUser, findUser, type LocalUser, listUsers, removeUser, UserError } from "../oauth/users.js";
import type { ReviewGate } from "../review/gate.js";
import type { Store } from "../store/types.js";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.js";
import { CONSOLE_HEADERS, type Html, html, layout } from "./html.js";
import {
  approvalsPage,
  auditPage,
  clientsPage,
  type ExplainForm,
  keysPage,
  notice,
  overviewPage,
  policiesPage,
  secretShown,
  usersPage,
} from "./pages.js";
import {
  type ConsoleSession,
  consoleKey,
  cookieNames,
  csrfToken,
  csrfValid,
  newSession,
  openCookie,
  readCookie,
  sealCookie,
  setCookie,
} from "./session.js";
import {
  authorizationUrl,
  CALLBACK_PATH,
  CodeRedeemer,
  consoleClient,
  LOGIN_STATE_SECONDS,
  type LoginState,
  newLoginState,
  SignInError,
} from "./signIn.js";
import { recordSignOut, signedOut } from "./signOut.js";

export interface ConsoleDeps {
  config: Config;
  store: Store;
  secret: Buffer;
  review: ReviewGate;
  audit: AuditWriter;
  policy(): CompiledPolicy;
  baseUrl(): string;
  /** True once the built-in authorization server is up (it starts after the listener). */
  signInReady(): boolean;
  log: Logger;
}

interface Admin {
  session: ConsoleSession;
  user: LocalUser;
  csrf: string;
  /** The principal id the user has at the gateway (separation of duties compares it). */
  principalId: string;
}

const AUDIT_SCAN = 5000;

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const { config, store } = deps;
  const sessionKey = consoleKey(deps.secret, "session");
  const csrfKey = consoleKey(deps.secret, "csrf");
  const loginKey = consoleKey(deps.secret, "login-state");
  const adminGroups = new Set(config.console.adminGroups);
  const db: Kysely<OAuthDatabase> = oauthDatabase(store);
  const redeemer = new CodeRedeemer();

  const send = (reply: FastifyReply, status: number, page: string) =>
    reply.code(status).headers(CONSOLE_HEADERS).type("text/html; charset=utf-8").send(page);

  const record = (admin: Admin, reason: string, detail: Record<string, unknown>) =>
    deps.audit.record({
      at: new Date(),
      environment: config.environment,
      principal: admin.principalId,
      method: "console",
      credentialId: null,
      server: null,
      rpcMethod: null,
      tool: null,
      decision: "allow",
      reason,
      latencyUs: 0,
      detail,
      policyVersion: deps.policy().version,
    });

  /** The signed-in admin, or null after replying (redirect to sign-in, or 403). */
  async function admin(req: FastifyRequest, reply: FastifyReply): Promise<Admin | null> {
    const names = cookieNames(deps.baseUrl());
    const opened = openCookie<ConsoleSession>(sessionKey, readCookie(req.headers.cookie, names.session));
    const session = opened !== null && !(await signedOut(store, opened)) ? opened : null;
    if (session === null) {
      if (req.url.startsWith("/console/api/"))
        await reply.code(401).header("cache-control", "no-store").send({ error: "signed_out" });
      else if (req.method === "GET") await reply.redirect("/console/login", 303);
      else
        await send(
          reply,
          403,
          layout(
            "Signed out",
            null,
            null,
            html`<p>Your session ended. <a href="/console/login">Sign in again</a>.</p>`,
          ),
        );
      return null;
    }
    const user = await findUser(db, session.sub);
    if (user === undefined || user.disabledAt !== null || !user.groups.some((g) => adminGroups.has(g))) {
      await forbidden(reply, user?.username ?? null);
      return null;
    }
    return {
      session,
      user,
      csrf: csrfToken(csrfKey, session),
      principalId: `oauth:${deps.baseUrl()}#${user.id}`,
    };
  }

  function forbidden(reply: FastifyReply, username: string | null) {
    return send(
      reply,
      403,
      layout(
        "Not allowed",
        null,
        null,
        html`<p>${username ?? "This account"} is signed in but is not an administrator: the console is open to members of ${[...adminGroups].join(", ")} only.</p>
<p>Ask an administrator to add you to one of these groups, then <a href="/console/login">sign in again</a>.</p>`,
      ),
    );
  }

  /** A POST's form when its CSRF token and origin hold; null after replying 403. */
  async function form(req: FastifyRequest, reply: FastifyReply, a: Admin): Promise<URLSearchParams | null> {
    const origin = req.headers.origin;
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    const body = type === "application/x-www-form-urlencoded" && typeof req.body === "string" ? req.body : "";
    const params = new URLSearchParams(body);
    const site = req.headers["sec-fetch-site"];
    const crossSite =
      (origin !== undefined && origin !== new URL(deps.baseUrl()).origin) ||
      (site !== undefined && site !== "same-origin");
    if (crossSite || !csrfValid(csrfKey, a.session, params.get("csrf"))) {
      deps.log.warn(
        { event: "console.csrf_refused", user: a.user.username },
        "console POST without a valid CSRF token",
      );
      await send(
        reply,
        403,
        layout(
          "Request refused",
          null,
          viewerOf(a),
          html`<p>The form was stale or did not come from this console. Go back, reload the page and try again.</p>`,
        ),
      );
      return null;
    }
    return params;
  }

  /** The admin as the owner of a key they create or rotate (they see its secret). */
  const ownerOf = (a: Admin) => ({ principal: a.principalId, name: a.user.username });
  const viewerOf = (a: Admin) => ({ username: a.user.username, csrf: a.csrf });
  const page = (reply: FastifyReply, a: Admin, title: string, current: string, body: Html, status = 200) =>
    send(reply, status, layout(title, current, viewerOf(a), body));

  // ── static assets ───────────────────────────────────────────────────
  app.get("/console/assets/console.css", async (_req, reply) =>
    reply
      .headers({ "cache-control": "public, max-age=300", "x-content-type-options": "nosniff" })
      .type("text/css; charset=utf-8")
      .send(CONSOLE_CSS),
  );
  app.get("/console/assets/console.js", async (_req, reply) =>
    reply
      .headers({ "cache-control": "public, max-age=300", "x-content-type-options": "nosniff" })
      .type("text/javascript; charset=utf-8")
      .send(CONSOLE_JS),
  );

  // ── sign-in ─────────────────────────────────────────────────────────
  app.get("/console/login", async (_req, reply) => {
    if (!deps.signInReady())
      return send(
        reply,
        503,
        layout("Starting", null, null, html`<p>Sign-in is not available yet. Try again in a moment.</p>`),
      );
    const base = deps.baseUrl();
    const names = cookieNames(base);
    const login = newLoginState();
    // Lax: the login state must survive the top-level redirect back from the sign-in pages.
    reply.header(
      "set-cookie",
      setCookie(names.login, sealCookie(loginKey, login), {
        maxAge: LOGIN_STATE_SECONDS,
        secure: names.secure,
        sameSite: "Lax",
      }),
    );
    return reply
      .headers(CONSOLE_HEADERS)
      .redirect(authorizationUrl(base, consoleClient(deps.secret, base), login), 303);
  });

  app.get<{ Querystring: { code?: string; state?: string; iss?: string; error?: string } }>(
    CALLBACK_PATH,
    async (req, reply) => {
      const base = deps.baseUrl();
      const names = cookieNames(base);
      const login = openCookie<LoginState>(loginKey, readCookie(req.headers.cookie, names.login));
      const clearLogin = setCookie(names.login, "", { maxAge: 0, secure: names.secure, sameSite: "Lax" });
      if (login === null)
        return send(
          reply.header("set-cookie", clearLogin),
          400,
          layout(
            "Sign-in expired",
            null,
            null,
            html`<p>The sign-in took too long or was started elsewhere. <a href="/console/login">Sign in again</a>.</p>`,
          ),
        );
      let sub: string;
      try {
        sub = await redeemer.redeem(base, consoleClient(deps.secret, base), login, req.query);
      } catch (err) {
        if (!(err instanceof SignInError) && !(err instanceof joseErrors.JOSEError)) throw err;
        deps.log.warn({ event: "console.sign_in_failed", reason: err.message }, "console sign-in failed");
        return send(
          reply.header("set-cookie", clearLogin),
          400,
          layout(
            "Sign-in failed",
            null,
            null,
            html`<p>The sign-in could not be completed. <a href="/console/login">Try again</a>.</p>`,
          ),
        );
      }
      const user = await findUser(db, sub);
      if (user === undefined || user.disabledAt !== null || !user.groups.some((g) => adminGroups.has(g))) {
        deps.log.warn(
          { event: "console.not_admin", user: user?.username ?? sub },
          "console refused: not in an admin group",
        );
        reply.header("set-cookie", clearLogin);
        return forbidden(reply, user?.username ?? null);
      }
      const session = newSession(sub, config.console.sessionMinutes);
      reply.header("set-cookie", [
        clearLogin,
        setCookie(names.session, sealCookie(sessionKey, session), {
          maxAge: config.console.sessionMinutes * 60,
          secure: names.secure,
          sameSite: "Strict",
        }),
      ]);
      deps.log.info({ event: "console.signed_in", user: user.username }, "console sign-in");
      return reply.headers(CONSOLE_HEADERS).redirect("/console", 303);
    },
  );

  app.post("/console/logout", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    if ((await form(req, reply, a)) === null) return reply;
    // Remembered in the store: a copy of the cookie is refused by every replica from now on
    // (never before this session's own issue time, whatever the skew between replicas' clocks).
    await recordSignOut(store, a.session.sub, Math.max(Date.now(), a.session.iat));
    record(a, `${a.user.username} signed out of the console`, { event: "console.signed_out" });
    const names = cookieNames(deps.baseUrl());
    reply.header(
      "set-cookie",
      setCookie(names.session, "", { maxAge: 0, secure: names.secure, sameSite: "Strict" }),
    );
    return send(
      reply,
      200,
      layout(
        "Signed out",
        null,
        null,
        html`<p>You are signed out of the console. <a href="/console/login">Sign in again</a>.</p>`,
      ),
    );
  });

  // ── overview ────────────────────────────────────────────────────────
  app.get("/console", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const [records, pending] = await Promise.all([
      store.listAudit({ limit: AUDIT_SCAN }),
      store.listApprovals({ status: "pending" }),
    ]);
    return page(reply, a, "Overview", "/console", overviewPage(records, pending.length));
  });

  // ── approvals ───────────────────────────────────────────────────────
  const pendingApprovals = async () =>
    (await store.listApprovals({ status: "pending", limit: 200 })).filter(
      (x) => x.expiresAt.getTime() > Date.now(),
    );
  const approvalsView = async (reply: FastifyReply, a: Admin, message: Html, status = 200) => {
    const [pending, all] = await Promise.all([pendingApprovals(), store.listApprovals({ limit: 50 })]);
    const recent = all.filter((x) => x.status !== "pending").slice(0, 20);
    return page(
      reply,
      a,
      "Approvals",
      "/console/approvals",
      html`${message}${approvalsPage(pending, recent, a.csrf)}`,
      status,
    );
  };
  app.get("/console/approvals", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    return approvalsView(reply, a, html``);
  });
  app.get("/console/api/approvals", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const pending = await pendingApprovals();
    return reply.headers({ "cache-control": "no-store", "x-content-type-options": "nosniff" }).send({
      pending: pending.map((x) => ({
        id: x.id,
        tool: x.tool,
        server: x.server,
        expiresAt: x.expiresAt.toISOString(),
      })),
    });
  });
  app.post<{ Params: { id: string; action: string } }>(
    "/console/approvals/:id/:action",
    async (req, reply) => {
      const a = await admin(req, reply);
      if (a === null) return reply;
      if ((await form(req, reply, a)) === null) return reply;
      const { id, action } = req.params;
      if (action !== "approve" && action !== "deny")
        return approvalsView(reply, a, notice("Unknown action.", true), 404);
      const outcome = await deps.review.decide(id, action === "approve" ? "approved" : "denied", {
        name: a.user.username,
        principalId: a.principalId,
        via: "console",
      });
      if (!outcome.ok)
        return approvalsView(
          reply,
          a,
          notice(`Not decided: ${outcome.message}`, true),
          outcome.code === "unknown" ? 404 : 409,
        );
      return approvalsView(
        reply,
        a,
        notice(
          `${action === "approve" ? "Approved" : "Denied"} ${id} (${outcome.record.tool} on ${outcome.record.server}).`,
        ),
      );
    },
  );

  // ── API keys ────────────────────────────────────────────────────────
  const keysView = async (reply: FastifyReply, a: Admin, message: Html, status = 200) =>
    page(
      reply,
      a,
      "API keys",
      "/console/keys",
      html`${message}${keysPage(await store.listKeys({ includeRevoked: true }), a.csrf, Object.keys(config.servers))}`,
      status,
    );
  app.get("/console/keys", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    return keysView(reply, a, html``);
  });
  app.post("/console/keys", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const f = await form(req, reply, a);
    if (f === null) return reply;
    const servers = (f.get("servers") ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const expires = (f.get("expires") ?? "").trim();
    try {
      const issued = await issueKey(store, deps.secret, config, {
        name: f.get("name") ?? "",
        scopes: servers,
        ...(expires === "" ? {} : { expires }),
        createdBy: ownerOf(a),
      });
      record(a, `API key ${issued.record.id} created in the console`, {
        event: "console.key_created",
        keyId: issued.record.id,
        name: issued.record.name,
      });
      return keysView(
        reply,
        a,
        secretShown(
          `Key ${issued.record.name} created.`,
          issued.key,
          `Expires ${issued.record.expiresAt.toISOString()}.`,
        ),
        201,
      );
    } catch (err) {
      if (!(err instanceof KeyInputError)) throw err;
      return keysView(reply, a, notice(err.message.replace(/--(\w+)/g, "$1"), true), 400);
    }
  });
  app.post<{ Params: { id: string; action: string } }>("/console/keys/:id/:action", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    if ((await form(req, reply, a)) === null) return reply;
    const { id, action } = req.params;
    try {
      if (action === "rotate") {
        const r = await rotateKey(store, deps.secret, config, id, { createdBy: ownerOf(a) });
        record(a, `API key ${id} rotated in the console to ${r.issued.record.id}`, {
          event: "console.key_rotated",
          keyId: id,
          newKeyId: r.issued.record.id,
        });
        return keysView(
          reply,
          a,
          secretShown(
            `Key ${r.issued.record.name} rotated.`,
            r.issued.key,
            `The old key stops working at ${r.oldExpiresAt.toISOString()}.`,
          ),
        );
      }
      if (action === "revoke") {
        const existing = await store.getKey(id);
        if (existing === undefined) return keysView(reply, a, notice(`No key ${id}.`, true), 404);
        if (existing.revokedAt === null) await store.revokeKey(id, new Date());
        record(a, `API key ${id} revoked in the console`, { event: "console.key_revoked", keyId: id });
        return keysView(reply, a, notice(`Key ${existing.name} (${id}) revoked.`));
      }
    } catch (err) {
      if (!(err instanceof KeyInputError)) throw err;
      return keysView(reply, a, notice(err.message, true), 400);
    }
    return keysView(reply, a, notice("Unknown action.", true), 404);
  });

  // ── OAuth clients and consents ──────────────────────────────────────
  const clientsView = async (reply: FastifyReply, a: Admin, message: Html) => {
    const [clients, consents, users] = await Promise.all([
      listMachineClients(db),
      db.selectFrom("oauth_consents").selectAll().orderBy("updated_at", "desc").limit(200).execute(),
      listUsers(db),
    ]);
    const names = new Map(users.map((u) => [u.id, u.username]));
    return page(
      reply,
      a,
      "OAuth clients & consents",
      "/console/clients",
      html`${message}${clientsPage(
        clients,
        consents.map((c) => ({
          accountId: c.account_id,
          username: names.get(c.account_id) ?? null,
          clientId: c.client_id,
          updatedAt: new Date(Number(c.updated_at)),
        })),
        a.csrf,
      )}`,
    );
  };
  app.get("/console/clients", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    return clientsView(reply, a, html``);
  });
  app.post<{ Params: { id: string } }>("/console/clients/:id/revoke", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    if ((await form(req, reply, a)) === null) return reply;
    const done = await revokeMachineClient(store, req.params.id);
    if (done)
      record(a, `machine client ${req.params.id} revoked in the console`, {
        event: "console.client_revoked",
        clientId: req.params.id,
      });
    return clientsView(
      reply,
      a,
      notice(done ? `Client ${req.params.id} revoked.` : `No active client ${req.params.id}.`, !done),
    );
  });

  // ── users ───────────────────────────────────────────────────────────
  const usersView = async (reply: FastifyReply, a: Admin, message: Html, status = 200) =>
    page(
      reply,
      a,
      "Users",
      "/console/users",
      html`${message}${usersPage(await listUsers(db), a.csrf, a.user.id)}`,
      status,
    );
  app.get("/console/users", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    return usersView(reply, a, html``);
  });
  app.post("/console/users", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const f = await form(req, reply, a);
    if (f === null) return reply;
    const password = generatePassword();
    try {
      const email = (f.get("email") ?? "").trim();
      const user = await addUser(db, {
        username: (f.get("username") ?? "").trim(),
        password,
        email: email === "" ? null : email,
        groups: (f.get("groups") ?? "")
          .split(",")
          .map((g) => g.trim())
          .filter(Boolean),
      });
      record(a, `user ${user.username} added in the console`, {
        event: "console.user_added",
        username: user.username,
        groups: user.groups,
      });
      return usersView(
        reply,
        a,
        secretShown(`User ${user.username} added.`, password, "This is their password."),
        201,
      );
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return usersView(reply, a, notice(err.message, true), 400);
    }
  });
  app.post("/console/users/remove", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const f = await form(req, reply, a);
    if (f === null) return reply;
    const username = f.get("username") ?? "";
    if (username === a.user.username)
      return usersView(reply, a, notice("You cannot remove yourself.", true), 409);
    const done = await removeUser(db, username);
    if (done)
      record(a, `user ${username} removed in the console`, { event: "console.user_removed", username });
    return usersView(
      reply,
      a,
      notice(done ? `User ${username} removed.` : `No user ${username}.`, !done),
      done ? 200 : 404,
    );
  });

  // ── policies ────────────────────────────────────────────────────────
  const policyFiles = (policy: CompiledPolicy) =>
    policy.sources.map((path) => {
      try {
        return { path, text: readFileSync(path, "utf8") };
      } catch {
        return { path, text: null };
      }
    });
  app.get("/console/policies", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const policy = deps.policy();
    return page(reply, a, "Policies", "/console/policies", policiesPage(policy, policyFiles(policy), a.csrf));
  });
  app.post("/console/policies/explain", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const f = await form(req, reply, a);
    if (f === null) return reply;
    const field = (name: keyof ExplainForm, max = 2000) => (f.get(name) ?? "").trim().slice(0, max);
    const explain: ExplainForm = {
      principal: field("principal"),
      server: field("server", 100),
      method: field("method", 100) || "tools/call",
      tool: field("tool", 500),
      tier: ["read", "write", "destructive"].includes(field("tier")) ? field("tier") : "",
      args: field("args", 8000) || "{}",
    };
    const policy = deps.policy();
    let result: ReturnType<CompiledPolicy["explain"]> | null = null;
    let error: string | null = null;
    try {
      const input = explainInput(
        {
          principal: explain.principal,
          server: explain.server,
          method: explain.method,
          ...(explain.tool === "" ? {} : { tool: explain.tool }),
          ...(explain.tier === "" ? {} : { tier: explain.tier }),
          args: explain.args,
        },
        config,
      );
      result = policy.explain(input);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      error = err.message.replace(/^--/, "");
    }
    return page(
      reply,
      a,
      "Policies",
      "/console/policies",
      policiesPage(policy, policyFiles(policy), a.csrf, { form: explain, result, error }),
      error === null ? 200 : 400,
    );
  });

  // ── audit search ────────────────────────────────────────────────────
  app.get<{ Querystring: Record<string, string | undefined> }>("/console/audit", async (req, reply) => {
    const a = await admin(req, reply);
    if (a === null) return reply;
    const q = req.query;
    const f = {
      decision: ["allow", "review", "deny"].includes(q.decision ?? "") ? (q.decision as string) : "",
      principal: (q.principal ?? "").slice(0, 200),
      server: (q.server ?? "").slice(0, 100),
      tool: (q.tool ?? "").slice(0, 200),
      text: (q.text ?? "").slice(0, 200),
    };
    const all = await store.listAudit({ limit: AUDIT_SCAN });
    const has = (v: string | null | undefined, s: string) =>
      s === "" || (v ?? "").toLowerCase().includes(s.toLowerCase());
    const found = all
      .filter(
        (r) =>
          (f.decision === "" || r.decision === f.decision) &&
          has(r.principal, f.principal) &&
          (f.server === "" || r.server === f.server) &&
          (f.tool === "" || r.tool === f.tool) &&
          has(r.reason, f.text),
      )
      .slice(0, 200);
    // Keys the gateway's own server secret vouches for, never merely those the store holds.
    const trust = serverSecretTrust(await store.listAuditSigningKeys(), deps.secret);
    const verdict = await verifyAuditLog(store, { trust });
    return page(reply, a, "Audit", "/console/audit", auditPage(found, f, all.length, verdict));
  });
}
