/**
 * The console's sign-in and sign-out routes: an OAuth 2.1 authorization code flow with PKCE
 * against the built-in authorization server (./signIn.ts), the login state kept sealed in a
 * short-lived SameSite=Lax cookie (it must survive the top-level redirect back), the session in
 * a SameSite=Strict one (./session.ts). Only an administrator (./access.ts) gets a session;
 * sign-out is remembered in the store so every replica refuses a copy of the cookie. Each
 * sign-in, refused sign-in and sign-out is an audit record (`method: "sign_in"`, events
 * `console.signed_in`, `console.sign_in_failed`, `console.signed_out`; docs/audit.md); the
 * password itself was checked, and its attempt recorded, by the authorization server's page.
 */
import { errors as joseErrors } from "jose";
import { findUser } from "../admin/users.js";
import { type SignInFacts, signInRecord } from "../audit/records.js";
import type { ConsoleRoutes } from "./access.js";
import { CONSOLE_HEADERS, html } from "./html.js";
import {
  consoleKey,
  cookieNames,
  newSession,
  openCookie,
  readCookie,
  sealCookie,
  setCookie,
} from "./session.js";
import {
  authorizationUrl,
  CALLBACK_PATH,
  CONSOLE_CLIENT_ID,
  CONSOLE_CLIENT_NAME,
  CodeRedeemer,
  consoleClient,
  LOGIN_STATE_SECONDS,
  type LoginState,
  newLoginState,
  SignInError,
} from "./signIn.js";
import { recordSignOut } from "./signOut.js";

export function registerSignInRoutes(routes: ConsoleRoutes): void {
  const { app, deps } = routes;
  const { config, store } = deps;
  const loginKey = consoleKey(deps.secret, "login-state");
  const redeemer = new CodeRedeemer();
  const client = { id: CONSOLE_CLIENT_ID, name: CONSOLE_CLIENT_NAME };
  /** One sign-in record about the console (the user's principal id when the account is known). */
  const record = (
    req: { socket: { remoteAddress?: string | undefined } },
    facts: Omit<SignInFacts, "client" | "address" | "principal"> & { userId: string | null },
  ): void => {
    const { userId, ...rest } = facts;
    deps.audit.record(
      signInRecord(config.environment, {
        ...rest,
        principal: userId === null ? null : `oauth:${deps.baseUrl()}#${userId}`,
        client,
        address: req.socket.remoteAddress ?? null,
      }),
    );
  };

  app.get("/console/login", async (_req, reply) => {
    if (!deps.signInReady())
      return routes.plain(
        reply,
        503,
        "Starting",
        html`<p>Sign-in is not available yet. Try again in a moment.</p>`,
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
      // Nothing is decided that could not be recorded (counted as unrecorded, like the request path).
      if (!deps.audit.accepting()) {
        deps.audit.noteUnrecorded();
        return routes.plain(
          reply.header("retry-after", "5"),
          503,
          "Try again shortly",
          html`<p>Sign-in is briefly unavailable. <a href="/console/login">Try again</a> in a few seconds.</p>`,
        );
      }
      const base = deps.baseUrl();
      const names = cookieNames(base);
      const login = openCookie<LoginState>(loginKey, readCookie(req.headers.cookie, names.login));
      const clearLogin = setCookie(names.login, "", { maxAge: 0, secure: names.secure, sameSite: "Lax" });
      if (login === null) {
        record(req, {
          event: "console.sign_in_failed",
          decision: "deny",
          reason: "console sign-in refused: no login state (expired, or started in another browser)",
          userId: null,
          username: null,
          extra: { outcome: "no_login_state" },
        });
        return routes.plain(
          reply.header("set-cookie", clearLogin),
          400,
          "Sign-in expired",
          html`<p>The sign-in took too long or was started elsewhere. <a href="/console/login">Sign in again</a>.</p>`,
        );
      }
      let sub: string;
      try {
        sub = await redeemer.redeem(base, consoleClient(deps.secret, base), login, req.query);
      } catch (err) {
        if (!(err instanceof SignInError) && !(err instanceof joseErrors.JOSEError)) throw err;
        deps.log.warn({ event: "console.sign_in_failed", reason: err.message }, "console sign-in failed");
        record(req, {
          event: "console.sign_in_failed",
          decision: "deny",
          reason: `console sign-in failed: ${err.message}`,
          userId: null,
          username: null,
          extra: { outcome: "sign_in_failed" },
        });
        return routes.plain(
          reply.header("set-cookie", clearLogin),
          400,
          "Sign-in failed",
          html`<p>The sign-in could not be completed. <a href="/console/login">Try again</a>.</p>`,
        );
      }
      const user = await findUser(store, sub);
      if (user === undefined || !routes.isAdmin(user)) {
        deps.log.warn(
          { event: "console.not_admin", user: user?.username ?? sub },
          "console refused: not in an admin group",
        );
        record(req, {
          event: "console.sign_in_failed",
          decision: "deny",
          reason:
            user === undefined
              ? "console sign-in refused: the signed-in account no longer exists"
              : `console sign-in refused: ${user.username} is ${user.disabledAt === null ? "not in an admin group" : "disabled"}`,
          userId: sub,
          username: user?.username ?? null,
          extra: {
            outcome:
              user === undefined
                ? "unknown_user"
                : user.disabledAt === null
                  ? "not_admin"
                  : "account_disabled",
          },
        });
        reply.header("set-cookie", clearLogin);
        return routes.forbidden(reply, user?.username ?? null);
      }
      const session = newSession(sub, config.console.sessionMinutes);
      reply.header("set-cookie", [
        clearLogin,
        setCookie(names.session, sealCookie(routes.sessionKey, session), {
          maxAge: config.console.sessionMinutes * 60,
          secure: names.secure,
          sameSite: "Strict",
        }),
      ]);
      deps.log.info({ event: "console.signed_in", user: user.username }, "console sign-in");
      record(req, {
        event: "console.signed_in",
        decision: "allow",
        reason: `${user.username} signed in to the console`,
        userId: user.id,
        username: user.username,
      });
      return reply.headers(CONSOLE_HEADERS).redirect("/console", 303);
    },
  );

  routes.post("/console/logout", async (req, reply, a) => {
    // Remembered in the store: a copy of the cookie is refused by every replica from now on
    // (never before this session's own issue time, whatever the skew between replicas' clocks).
    await recordSignOut(store, a.session.sub, Math.max(Date.now(), a.session.iat));
    record(req, {
      event: "console.signed_out",
      decision: "allow",
      reason: `${a.user.username} signed out of the console`,
      userId: a.user.id,
      username: a.user.username,
    });
    const names = cookieNames(deps.baseUrl());
    reply.header(
      "set-cookie",
      setCookie(names.session, "", { maxAge: 0, secure: names.secure, sameSite: "Strict" }),
    );
    return routes.plain(
      reply,
      200,
      "Signed out",
      html`<p>You are signed out of the console. <a href="/console/login">Sign in again</a>.</p>`,
    );
  });
}
