/**
 * The console's credential pages: API keys (create, rotate, revoke), OAuth machine clients and
 * user consents (revoke), and local users (add with a generated password, remove, and on each
 * user's own page: set groups, reset the password, disable or enable, revoke a consent). Each change
 * goes through src/admin/, the same operations the CLI runs, and is audited there. A secret
 * (a key, a password) is shown once, on the page that created it.
 */

import type { FastifyReply } from "fastify";
import { listClients, listConsents, revokeClient } from "../admin/clients.js";
import { createKey, revokeKey, rotateKey } from "../admin/keys.js";
import {
  addUser,
  disableUser,
  enableUser,
  findUser,
  generatePassword,
  listUsers,
  removeUser,
  resetPassword,
  revokeConsent,
  setGroups,
  userConsents,
} from "../admin/users.js";
import { KeyInputError } from "../authn/keyLifecycle.js";
import { UserError } from "../oauth/users.js";
import { type Admin, type ConsolePage, type ConsoleRoutes, listField, ownerOf } from "./access.js";
import { type Html, html } from "./html.js";
import { clientsPage, keysPage, notice, secretShown, usersPage } from "./pages.js";
import { userPage } from "./userPages.js";

export function registerCredentialRoutes(routes: ConsoleRoutes): void {
  const { deps } = routes;
  const { config, store } = deps;

  // ── API keys ────────────────────────────────────────────────────────
  const keys: ConsolePage = {
    title: "API keys",
    path: "/console/keys",
    body: async (a) =>
      keysPage(await store.listKeys({ includeRevoked: true }), a.csrf, Object.keys(config.servers)),
  };
  routes.get(keys.path, (_req, reply, a) => routes.show(reply, a, keys));
  routes.post(keys.path, async (_req, reply, a, f) => {
    const expires = (f.get("expires") ?? "").trim();
    try {
      const issued = await createKey(
        store,
        deps.secret,
        config,
        {
          name: f.get("name") ?? "",
          scopes: listField(f, "servers"),
          ...(expires === "" ? {} : { expires }),
          createdBy: ownerOf(a),
        },
        routes.auditFor(a),
      );
      const shown = secretShown(
        `Key ${issued.record.name} created.`,
        issued.key,
        [`Expires ${issued.record.expiresAt.toISOString()}.`, ...(issued.warnings ?? [])].join(" "),
      );
      return routes.show(reply, a, keys, shown, 201);
    } catch (err) {
      if (!(err instanceof KeyInputError)) throw err;
      return routes.show(reply, a, keys, notice(err.message.replace(/--(\w+)/g, "$1"), true), 400);
    }
  });
  routes.post("/console/keys/:id/:action", async (req, reply, a) => {
    const { id = "", action } = req.params;
    try {
      if (action === "rotate") {
        const r = await rotateKey(
          store,
          deps.secret,
          config,
          id,
          { createdBy: ownerOf(a) },
          routes.auditFor(a),
        );
        const shown = secretShown(
          `Key ${r.issued.record.name} rotated.`,
          r.issued.key,
          `The old key stops working at ${r.oldExpiresAt.toISOString()}; the new one expires at ${r.issued.record.expiresAt.toISOString()} (same as the old key).`,
        );
        return routes.show(reply, a, keys, shown);
      }
      if (action === "revoke") {
        const revoked = await revokeKey(store, id, routes.auditFor(a));
        if (revoked === undefined) return routes.show(reply, a, keys, notice(`No key ${id}.`, true), 404);
        return routes.show(reply, a, keys, notice(`Key ${revoked.key.name} (${id}) revoked.`));
      }
    } catch (err) {
      if (!(err instanceof KeyInputError)) throw err;
      return routes.show(reply, a, keys, notice(err.message, true), 400);
    }
    return routes.show(reply, a, keys, notice("Unknown action.", true), 404);
  });

  // ── OAuth clients and consents ──────────────────────────────────────
  const clients: ConsolePage = {
    title: "OAuth clients & consents",
    path: "/console/clients",
    body: async (a) => {
      const [machineClients, consents] = await Promise.all([listClients(store), listConsents(store, 200)]);
      return clientsPage(machineClients, consents, a.csrf);
    },
  };
  routes.get(clients.path, (_req, reply, a) => routes.show(reply, a, clients));
  routes.post("/console/clients/:id/revoke", async (req, reply, a) => {
    const { id = "" } = req.params;
    const done = await revokeClient(store, id, routes.auditFor(a));
    const message = notice(done ? `Client ${id} revoked.` : `No active client ${id}.`, !done);
    return routes.show(reply, a, clients, message);
  });

  // ── users ───────────────────────────────────────────────────────────
  const users: ConsolePage = {
    title: "Users",
    path: "/console/users",
    body: async (a) => usersPage(await listUsers(store), a.csrf, a.user.id),
  };
  routes.get(users.path, (_req, reply, a) => routes.show(reply, a, users));
  routes.post(users.path, async (_req, reply, a, f) => {
    const password = generatePassword();
    try {
      const email = (f.get("email") ?? "").trim();
      const user = await addUser(
        store,
        {
          username: (f.get("username") ?? "").trim(),
          password,
          email: email === "" ? null : email,
          groups: listField(f, "groups"),
        },
        routes.auditFor(a),
      );
      const shown = secretShown(`User ${user.username} added.`, password, "This is their password.");
      return routes.show(reply, a, users, shown, 201);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return routes.show(reply, a, users, notice(err.message, true), 400);
    }
  });
  routes.post("/console/users/remove", async (_req, reply, a, f) => {
    const username = f.get("username") ?? "";
    if (username === a.user.username)
      return routes.show(reply, a, users, notice("You cannot remove yourself.", true), 409);
    const done = await removeUser(store, deps.secret, username, routes.auditFor(a));
    const message = notice(done ? `User ${username} removed.` : `No user ${username}.`, !done);
    return routes.show(reply, a, users, message, done ? 200 : 404);
  });

  // ── one user ────────────────────────────────────────────────────────
  /** The user's page, with `message` above it; 404 when the id names nobody. */
  const showUser = async (reply: FastifyReply, a: Admin, id: string, message?: Html, status = 200) => {
    const user = await findUser(store, id);
    if (user === undefined) return routes.show(reply, a, users, notice(`No user ${id}.`, true), 404);
    const consents = await userConsents(store, deps.secret, user.username);
    const body = userPage(user, consents, a.csrf, user.id === a.user.id);
    return routes.page(
      reply,
      a,
      `User ${user.username}`,
      users.path,
      message === undefined ? body : html`${message}${body}`,
      status,
    );
  };
  routes.get("/console/users/:id", (req, reply, a) => showUser(reply, a, req.params.id ?? ""));
  routes.post("/console/users/:id/:action", async (req, reply, a, f) => {
    const { id = "", action } = req.params;
    const user = await findUser(store, id);
    if (user === undefined) return routes.show(reply, a, users, notice(`No user ${id}.`, true), 404);
    const audit = routes.auditFor(a);
    const self = user.id === a.user.id;
    try {
      switch (action) {
        case "groups": {
          const groups = listField(f, "groups");
          // An administrator cannot take away their own access to the console by mistake.
          if (self && !groups.some((g) => routes.adminGroups.has(g)))
            return showUser(
              reply,
              a,
              id,
              notice("You cannot remove yourself from the administrators.", true),
              409,
            );
          const updated = await setGroups(store, user.username, groups, audit);
          return showUser(
            reply,
            a,
            id,
            notice(`Groups of ${updated.username} set to ${updated.groups.join(", ") || "none"}.`),
          );
        }
        case "password": {
          const { generated } = await resetPassword(store, user.username, null, audit);
          const shown = secretShown(
            `Password of ${user.username} reset.`,
            generated ?? "",
            "This is their new password.",
          );
          return showUser(reply, a, id, shown);
        }
        case "disable": {
          if (self) return showUser(reply, a, id, notice("You cannot disable yourself.", true), 409);
          const r = await disableUser(store, deps.secret, user.username, audit);
          const text = r.changed
            ? `${user.username} disabled; ${r.grantsRevoked} grants revoked.`
            : `${user.username} was already disabled.`;
          return showUser(reply, a, id, notice(text));
        }
        case "enable": {
          const r = await enableUser(store, user.username, audit);
          return showUser(
            reply,
            a,
            id,
            notice(r.changed ? `${user.username} enabled.` : `${user.username} was already enabled.`),
          );
        }
        case "revoke-consent": {
          const client = (f.get("client") ?? "").trim();
          const done =
            client !== "" && (await revokeConsent(store, deps.secret, user.username, client, audit));
          const text = done
            ? `Consent of ${user.username} to ${client} revoked.`
            : `No consent to ${client}.`;
          return showUser(reply, a, id, notice(text, !done), done ? 200 : 404);
        }
      }
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return showUser(reply, a, id, notice(err.message, true), 400);
    }
    return showUser(reply, a, id, notice("Unknown action.", true), 404);
  });
}
