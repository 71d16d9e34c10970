/**
 * Who may use the console, checked in one place. Every page needs a console session
 * (./session.ts) of a user who is, on this request, enabled and in one of
 * `console.adminGroups`; every POST also needs the session's CSRF token and, when the browser
 * sends them, a same-origin `Origin` and `Sec-Fetch-Site` (OWASP CSRF Prevention Cheat Sheet).
 * Pages register through {@link ConsoleRoutes.get} and {@link ConsoleRoutes.post}, which run
 * these checks before the handler and reply (redirect, 401 or 403) when they fail, so no route
 * can forget one. Changes made through src/admin/ are audited as `method: "console"` records
 * (docs/console.md lists their events).
 */

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface } from "fastify";
import type { Logger } from "pino";
import type { AdminAction, AdminAudit } from "../admin/actions.js";
import type { TaskAdministration } from "../admin/tasks.js";
import { userChange, userChangeDetail } from "../admin/userAudit.js";
import { findUser } from "../admin/users.js";
import { adminRecord } from "../audit/records.js";
import type { AuditWriter } from "../audit/writer.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import type { Config } from "../config/schema.js";
import type { LocalUser } from "../oauth/users.js";
import type { ReviewGate } from "../review/gate.js";
import type { KeyOwner, Store } from "../store/types.js";
import { CONSOLE_HEADERS, type Html, html, layout } from "./html.js";
import {
  type ConsoleSession,
  consoleKey,
  cookieNames,
  csrfToken,
  csrfValid,
  openCookie,
  readCookie,
} from "./session.js";
import { signedOut } from "./signOut.js";

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
  /** The task service (live tasks, End); absent: the Tasks page says tasks are not available. */
  tasks?: TaskAdministration;
  log: Logger;
}

/** The signed-in administrator of one request. */
export interface Admin {
  session: ConsoleSession;
  user: LocalUser;
  csrf: string;
  /** The principal id the user has at the gateway (separation of duties compares it). */
  principalId: string;
}

/**
 * Every console route's request: its path ids (`:id`, `:action`) and query fields are strings
 * when the route has them.
 */
export interface ConsoleRoute extends RouteGenericInterface {
  Params: { id?: string; action?: string };
  Querystring: Record<string, string | undefined>;
}

type Handler<Extra extends unknown[]> = (
  req: FastifyRequest<ConsoleRoute>,
  reply: FastifyReply,
  admin: Admin,
  ...extra: Extra
) => Promise<unknown>;

/** A console page shown with an optional notice above it. */
export interface ConsolePage {
  title: string;
  path: string;
  body(admin: Admin): Promise<Html>;
}

export class ConsoleRoutes {
  readonly sessionKey: Buffer;
  readonly csrfKey: Buffer;
  readonly adminGroups: ReadonlySet<string>;

  constructor(
    readonly app: FastifyInstance,
    readonly deps: ConsoleDeps,
  ) {
    this.sessionKey = consoleKey(deps.secret, "session");
    this.csrfKey = consoleKey(deps.secret, "csrf");
    this.adminGroups = new Set(deps.config.console.adminGroups);
  }

  /** A GET route open to a signed-in administrator only. */
  get(path: string, handler: Handler<[]>): void {
    this.app.get<ConsoleRoute>(path, async (req, reply) => {
      const a = await this.admin(req, reply);
      return a === null ? reply : handler(req, reply, a);
    });
  }

  /** A POST route open to a signed-in administrator whose form carries a valid CSRF token. */
  post(path: string, handler: Handler<[form: URLSearchParams]>): void {
    this.app.post<ConsoleRoute>(path, async (req, reply) => {
      const a = await this.admin(req, reply);
      if (a === null) return reply;
      const f = await this.form(req, reply, a);
      return f === null ? reply : handler(req, reply, a, f);
    });
  }

  /** A user who may use the console: enabled and, now, in one of `console.adminGroups`. */
  isAdmin(user: LocalUser): boolean {
    return user.disabledAt === null && user.groups.some((g) => this.adminGroups.has(g));
  }

  send(reply: FastifyReply, status: number, page: string) {
    return reply.code(status).headers(CONSOLE_HEADERS).type("text/html; charset=utf-8").send(page);
  }

  /** A page of the console's frame (navigation, the admin's name and sign-out form). */
  page(reply: FastifyReply, a: Admin, title: string, current: string | null, body: Html, status = 200) {
    return this.send(reply, status, layout(title, current, viewerOf(a), body));
  }

  /** `pg` with `message` (a notice or a secret shown once) above it. */
  async show(reply: FastifyReply, a: Admin, pg: ConsolePage, message: Html = html``, status = 200) {
    return this.page(reply, a, pg.title, pg.path, html`${message}${await pg.body(a)}`, status);
  }

  /** A page outside the console's frame (signed out, not allowed, sign-in errors). */
  plain(reply: FastifyReply, status: number, title: string, body: Html) {
    return this.send(reply, status, layout(title, null, null, body));
  }

  forbidden(reply: FastifyReply, username: string | null) {
    return this.plain(
      reply,
      403,
      "Not allowed",
      html`<p>${username ?? "This account"} is signed in but is not an administrator: the console is open to members of ${[...this.adminGroups].join(", ")} only.</p>
<p>Ask an administrator to add you to one of these groups, then <a href="/console/login">sign in again</a>.</p>`,
    );
  }

  /** How changes `a` makes through src/admin/ are audited. */
  auditFor(a: Admin): AdminAudit {
    return async (action) => {
      const { reason, detail } = consoleRecord(action);
      this.record(a, reason, detail);
    };
  }

  /** One audit record of an action by `a` (`method: "console"`). */
  record(a: Admin, reason: string, detail: Record<string, unknown>): void {
    this.deps.audit.record(
      adminRecord(
        this.deps.config.environment,
        { principal: a.principalId, method: "console" },
        reason,
        detail,
        {
          policyVersion: this.deps.policy().version,
        },
      ),
    );
  }

  /** The signed-in admin, or null after replying (redirect to sign-in, 401 or 403). */
  private async admin(req: FastifyRequest<ConsoleRoute>, reply: FastifyReply): Promise<Admin | null> {
    const { store } = this.deps;
    const names = cookieNames(this.deps.baseUrl());
    const opened = openCookie<ConsoleSession>(this.sessionKey, readCookie(req.headers.cookie, names.session));
    const session = opened !== null && !(await signedOut(store, opened)) ? opened : null;
    if (session === null) {
      if (req.url.startsWith("/console/api/"))
        await reply.code(401).header("cache-control", "no-store").send({ error: "signed_out" });
      else if (req.method === "GET") await reply.redirect("/console/login", 303);
      else
        await this.plain(
          reply,
          403,
          "Signed out",
          html`<p>Your session ended. <a href="/console/login">Sign in again</a>.</p>`,
        );
      return null;
    }
    const user = await findUser(store, session.sub);
    if (user === undefined || !this.isAdmin(user)) {
      await this.forbidden(reply, user?.username ?? null);
      return null;
    }
    return {
      session,
      user,
      csrf: csrfToken(this.csrfKey, session),
      principalId: `oauth:${this.deps.baseUrl()}#${user.id}`,
    };
  }

  /** A POST's form when its CSRF token and origin hold; null after replying 403. */
  private async form(
    req: FastifyRequest<ConsoleRoute>,
    reply: FastifyReply,
    a: Admin,
  ): Promise<URLSearchParams | null> {
    const origin = req.headers.origin;
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    const body = type === "application/x-www-form-urlencoded" && typeof req.body === "string" ? req.body : "";
    const params = new URLSearchParams(body);
    const site = req.headers["sec-fetch-site"];
    const crossSite =
      (origin !== undefined && origin !== new URL(this.deps.baseUrl()).origin) ||
      (site !== undefined && site !== "same-origin");
    if (crossSite || !csrfValid(this.csrfKey, a.session, params.get("csrf"))) {
      this.deps.log.warn(
        { event: "console.csrf_refused", user: a.user.username },
        "console POST without a valid CSRF token",
      );
      await this.page(
        reply,
        a,
        "Request refused",
        null,
        html`<p>The form was stale or did not come from this console. Go back, reload the page and try again.</p>`,
        403,
      );
      return null;
    }
    return params;
  }
}

/** The admin as the owner of a key they create or rotate (they see its secret). */
export function ownerOf(a: Admin): KeyOwner {
  return { principal: a.principalId, name: a.user.username };
}

function viewerOf(a: Admin) {
  return { username: a.user.username, csrf: a.csrf };
}

/** A comma-separated form field as a list (empty items dropped). */
export function listField(form: URLSearchParams, name: string): string[] {
  return (form.get(name) ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The console's audit record of an admin action (events as docs/console.md lists them). */
function consoleRecord(action: AdminAction): { reason: string; detail: Record<string, unknown> } {
  switch (action.kind) {
    case "key.created":
      return {
        reason: `API key ${action.key.id} created in the console`,
        detail: { event: "console.key_created", keyId: action.key.id, name: action.key.name },
      };
    case "key.rotated":
      return {
        reason: `API key ${action.previousId} rotated in the console to ${action.key.id}`,
        detail: { event: "console.key_rotated", keyId: action.previousId, newKeyId: action.key.id },
      };
    case "key.revoked":
      return {
        reason: `API key ${action.key.id} revoked in the console`,
        detail: { event: "console.key_revoked", keyId: action.key.id },
      };
    case "user.added":
      return {
        reason: `user ${action.user.username} added in the console`,
        detail: { event: "console.user_added", username: action.user.username, groups: action.user.groups },
      };
    case "user.removed":
      return {
        reason: `user ${action.username} removed in the console`,
        detail: { event: "console.user_removed", username: action.username },
      };
    case "user.groups_set":
    case "user.password_reset":
    case "user.disabled":
    case "user.enabled":
    case "user.consent_revoked":
      return {
        reason: `${userChange(action)} in the console`,
        detail: { event: `console.${action.kind.replace(".", "_")}`, ...userChangeDetail(action) },
      };
    case "client.revoked":
      return {
        reason: `machine client ${action.clientId} revoked in the console`,
        detail: { event: "console.client_revoked", clientId: action.clientId },
      };
    case "tool.accepted":
      return {
        reason: `tool ${action.server}/${action.tool} definition accepted in the console`,
        detail: {
          event: "console.tool_accepted",
          server: action.server,
          tool: action.tool,
          previousHash: action.previousHash,
          pinnedHash: action.pinnedHash,
        },
      };
  }
}
