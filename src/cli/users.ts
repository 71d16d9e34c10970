/**
 * `portcullis users add|list|remove|set-groups|reset-password|disable|enable|consents|revoke-consent`:
 * local accounts of the built-in authorization server (passwords hashed with scrypt; never
 * printed except a generated one, once; never taken from a command-line argument, which `ps`
 * shows to every user of the machine). Every change is audited (docs/cli.md).
 */
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import type { Command } from "commander";
import {
  addUser,
  disableUser,
  enableUser,
  generatePassword,
  listUsers,
  removeUser,
  resetPassword,
  revokeConsent,
  setGroups,
  userConsents,
} from "../admin/users.js";
import { serverSecret } from "../authn/serverSecret.js";
import { type LocalUser, UserError } from "../oauth/users.js";
import { cliAudit } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

function view(u: LocalUser): Record<string, unknown> {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    groups: u.groups,
    createdAt: u.createdAt.toISOString(),
    disabledAt: u.disabledAt?.toISOString() ?? null,
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

/** Reads a password: a prompt without echo on a terminal, else the whole of standard input. */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return readStdin();
  process.stderr.write("New password: ");
  const muted = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.once("line", resolve));
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}

/** Comma-separated names as a list ("" is the empty list). */
function groupList(value: string): string[] {
  return value
    .split(",")
    .map((g) => g.trim())
    .filter(Boolean);
}

export function registerUserCommands(program: Command, deps: CliDeps): void {
  const users = program
    .command("users")
    .description("manage local user accounts of the built-in authorization server");

  deps
    .withStoreOptions(users.command("add"))
    .description("add a user; without --password-stdin a password is generated and printed once")
    .argument("<username>", "login name")
    .option("--email <email>", "email address")
    .option("--groups <groups>", "comma-separated group names (policy can use them)")
    .option("--password-stdin", "read the password from standard input")
    .option("--json", "print one JSON object")
    .action(
      async (
        username: string,
        opts: { email?: string; groups?: string; passwordStdin?: boolean; json?: boolean },
      ) => {
        const password = opts.passwordStdin ? await readStdin() : generatePassword();
        await deps.withStore(opts, async (store, { config }) => {
          const user = await addUser(
            store,
            { username, password, email: opts.email ?? null, groups: groupList(opts.groups ?? "") },
            cliAudit(store, config),
          );
          const shown = opts.passwordStdin ? {} : { password };
          deps.print(opts.json, { ...view(user), ...shown }, () =>
            opts.passwordStdin
              ? `added ${user.username}`
              : `added ${user.username}\npassword (shown once): ${password}`,
          );
        });
      },
    );

  deps
    .withStoreOptions(users.command("list"))
    .description("list users")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store) => {
        const list = (await listUsers(store)).map(view);
        deps.print(opts.json, list, () =>
          table(
            list.map((u) => ({ ...u, status: u.disabledAt === null ? "active" : "disabled" })),
            ["username", "email", "groups", "status", "id"],
            "(no users)",
          ),
        );
      });
    });

  deps
    .withStoreOptions(users.command("remove"))
    .description("remove a user, revoking every grant, token and sign-in session they hold")
    .argument("<username>", "login name")
    .option("--json", "print one JSON object")
    .action(async (username: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: true });
        if (!(await removeUser(store, secret, username, cliAudit(store, config))))
          throw new UserError(`no user named ${username}`);
        deps.print(opts.json, { username, removed: true }, () => `removed ${username}`);
      });
    });

  deps
    .withStoreOptions(users.command("set-groups"))
    .description("replace a user's groups (policy and console access read them at the next sign-in)")
    .argument("<username>", "login name")
    .argument("<groups>", 'comma-separated group names; "" for none')
    .option("--json", "print one JSON object")
    .action(async (username: string, groups: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const user = await setGroups(store, username, groupList(groups), cliAudit(store, config));
        deps.print(
          opts.json,
          view(user),
          () => `${user.username}: groups ${user.groups.join(",") || "(none)"}`,
        );
      });
    });

  deps
    .withStoreOptions(users.command("reset-password"))
    .description(
      "set a new password: generated and printed once, or read with --password-stdin (a prompt on a terminal)",
    )
    .argument("<username>", "login name")
    .option(
      "--password-stdin",
      "read the new password from standard input (prompted, not echoed, on a terminal)",
    )
    .option("--json", "print one JSON object")
    .action(async (username: string, opts: { passwordStdin?: boolean; json?: boolean }) => {
      const given = opts.passwordStdin ? await readPassword() : null;
      await deps.withStore(opts, async (store, { config }) => {
        const { user, generated } = await resetPassword(store, username, given, cliAudit(store, config));
        const shown = generated === null ? {} : { password: generated };
        deps.print(opts.json, { ...view(user), ...shown }, () =>
          generated === null
            ? `password of ${user.username} changed`
            : `password of ${user.username} changed\npassword (shown once): ${generated}`,
        );
      });
    });

  deps
    .withStoreOptions(users.command("disable"))
    .description(
      "refuse a user's sign-ins and revoke every grant, token and sign-in session they hold (access tokens refused from the next request)",
    )
    .argument("<username>", "login name")
    .option("--json", "print one JSON object")
    .action(async (username: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: true });
        const r = await disableUser(store, secret, username, cliAudit(store, config));
        deps.print(opts.json, { ...view(r.user), changed: r.changed, grantsRevoked: r.grantsRevoked }, () =>
          r.changed
            ? `disabled ${r.user.username} (${r.grantsRevoked} grants revoked)`
            : `${r.user.username} was already disabled`,
        );
      });
    });

  deps
    .withStoreOptions(users.command("enable"))
    .description("let a disabled user sign in again (revoked grants stay revoked)")
    .argument("<username>", "login name")
    .option("--json", "print one JSON object")
    .action(async (username: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const r = await enableUser(store, username, cliAudit(store, config));
        deps.print(opts.json, { ...view(r.user), changed: r.changed }, () =>
          r.changed ? `enabled ${r.user.username}` : `${r.user.username} was already enabled`,
        );
      });
    });

  deps
    .withStoreOptions(users.command("consents"))
    .description("list the clients a user consented to (remembered consents)")
    .argument("<username>", "login name")
    .option("--json", "print a JSON array")
    .action(async (username: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const list = (await userConsents(store, serverSecret(config, { create: true }), username)).map(
          (c) => ({
            clientId: c.clientId,
            clientName: c.clientName,
            updatedAt: c.updatedAt.toISOString(),
          }),
        );
        deps.print(opts.json, list, () =>
          table(list, ["clientName", "clientId", "updatedAt"], "(no consents)"),
        );
      });
    });

  deps
    .withStoreOptions(users.command("revoke-consent"))
    .description("forget a user's consent to a client and revoke that client's grants and tokens for them")
    .argument("<username>", "login name")
    .argument("<client-id>", "the client's id (see `users consents`)")
    .option("--json", "print one JSON object")
    .action(async (username: string, clientId: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        const secret = serverSecret(config, { create: true });
        if (!(await revokeConsent(store, secret, username, clientId, cliAudit(store, config))))
          throw new UserError(`${username} has no consent or grant for client ${clientId}`);
        deps.print(
          opts.json,
          { username, clientId, revoked: true },
          () => `revoked ${username}'s consent to ${clientId}`,
        );
      });
    });
}
