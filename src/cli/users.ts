/**
 * `portcullis users add|list|remove`: local accounts for the built-in authorization server
 * (passwords hashed with scrypt; never printed except a generated one, once).
 */
import type { Command } from "commander";
import { addUser, generatePassword, listUsers, removeUser } from "../admin/users.js";
import { type LocalUser, UserError } from "../oauth/users.js";
import { cliAudit } from "./auditTrail.js";
import type { CliDeps } from "./commandDeps.js";

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
            {
              username,
              password,
              email: opts.email ?? null,
              groups:
                opts.groups
                  ?.split(",")
                  .map((g) => g.trim())
                  .filter(Boolean) ?? [],
            },
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
          list.length === 0
            ? "(no users)"
            : list
                .map((u) => `${u.username}\t${u.email ?? "-"}\t${(u.groups as string[]).join(",") || "-"}`)
                .join("\n"),
        );
      });
    });

  deps
    .withStoreOptions(users.command("remove"))
    .description("remove a user")
    .argument("<username>", "login name")
    .option("--json", "print one JSON object")
    .action(async (username: string, opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, { config }) => {
        if (!(await removeUser(store, username, cliAudit(store, config))))
          throw new UserError(`no user named ${username}`);
        deps.print(opts.json, { username, removed: true }, () => `removed ${username}`);
      });
    });
}
