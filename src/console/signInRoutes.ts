/**
 * The console's sign-in and sign-out routes: an OAuth 2.1 authorization code flow with PKCE
 * against the built-in authorization server (./signIn.ts), the login state kept sealed in a
 * short-lived SameSite=Lax cookie (it must survive the top-level redirect back), the session in
 * a SameSite=Strict one (./session.ts). Only an administrator (./access.ts) gets a session;
 * sign-out is remembered in the store so every replica refuses a copy of the cookie.
 */
import { errors as joseErrors } from "jose";
import { findUser } from "../admin/users.js";
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
      const base = deps.baseUrl();
      const names = cookieNames(base);
      const login = openCookie<LoginState>(loginKey, readCookie(req.headers.cookie, names.login));
      const clearLogin = setCookie(names.login, "", { maxAge: 0, secure: names.secure, sameSite: "Lax" });
      if (login === null)
        return routes.plain(
          reply.header("set-cookie", clearLogin),
          400,
          "Sign-in expired",
          html`<p>The sign-in took too long or was started elsewhere. <a href="/console/login">Sign in again</a>.</p>`,
        );
      let sub: string;
      try {
        sub = await redeemer.redeem(base, consoleClient(deps.secret, base), login, req.query);
      } catch (err) {
        if (!(err instanceof SignInError) && !(err instanceof joseErrors.JOSEError)) throw err;
        deps.log.warn({ event: "console.sign_in_failed", reason: err.message }, "console sign-in failed");
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
      return reply.headers(CONSOLE_HEADERS).redirect("/console", 303);
    },
  );

  routes.post("/console/logout", async (_req, reply, a) => {
    // Remembered in the store: a copy of the cookie is refused by every replica from now on
    // (never before this session's own issue time, whatever the skew between replicas' clocks).
    await recordSignOut(store, a.session.sub, Math.max(Date.now(), a.session.iat));
    routes.record(a, `${a.user.username} signed out of the console`, { event: "console.signed_out" });
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
