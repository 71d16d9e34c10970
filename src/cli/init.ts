/**
 * `portcullis init`: the first run. Writes a commented portcullis.yaml for the user's MCP
 * servers (imported from an existing Claude Desktop, Cursor or VS Code config, asked for, or
 * the bundled demo), creates the store and the first admin (password shown once), and prints
 * the client configuration. Interactive on a terminal, scriptable with --yes.
 */
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import { addUser, generatePassword, listUsers } from "../admin/users.js";
import { serverSecret } from "../authn/serverSecret.js";
import { publicBaseUrl } from "../config/derived.js";
import { ConfigError, demoServerPath, loadConfig } from "../config/load.js";
import { EnvironmentName } from "../config/schema.js";
import { isPostgresSpec, openStore } from "../store/open.js";
import { cliAudit } from "./auditTrail.js";
import { cliInvocation, shellQuote, welcomeBanner } from "./banner.js";
import { ClientConfigImport, type ImportedServer, wellKnownClientConfigs } from "./clientConfigImport.js";
import { renderInitConfig } from "./initConfig.js";
import { print } from "./options.js";
import { Prompter } from "./prompter.js";

export interface InitOptions {
  dir?: string;
  yes?: boolean;
  import?: string[];
  admin?: string;
  environment?: string;
  store?: string;
  port?: string;
  force?: boolean;
  json?: boolean;
}

const ADMIN_GROUP = "admins";

function port(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535)
    throw new ConfigError(`--port '${text}': must be an integer between 0 and 65535`);
  return n;
}

function environment(name: string): string {
  if (!EnvironmentName.safeParse(name).success)
    throw new ConfigError(
      `--environment '${name}': must be a lowercase word of 1-16 letters/digits, e.g. dev, test, prod`,
    );
  return name;
}

function storeSpec(spec: string): string {
  if (spec !== "sqlite" && !isPostgresSpec(spec))
    throw new ConfigError(`--store '${spec}': must be 'sqlite' or a postgres:// URL`);
  return spec;
}

/** The URL as written to the config: its password stays out (the PostgreSQL client reads PGPASSWORD). */
function withoutPassword(spec: string): string {
  if (!isPostgresSpec(spec)) return spec;
  const url = new URL(spec);
  url.password = "";
  return url.toString();
}

function demoServer(): ImportedServer {
  return {
    name: "demo",
    transport: "stdio",
    command: process.execPath,
    args: [demoServerPath()],
    env: {},
    from: "the demo server bundled with Portcullis (a few harmless tools); replace it with your own",
  };
}

/** A server typed at the prompt: an http(s) URL, or a command line split on spaces. */
function typedServer(name: string, target: string): ImportedServer {
  if (/^https?:\/\//.test(target))
    return { name, transport: "http", url: target, headers: {}, from: "portcullis init" };
  const [command = "", ...args] = target.split(/\s+/).filter(Boolean);
  return { name, transport: "stdio", command, args, env: {}, from: "portcullis init" };
}

interface Answers {
  environment: string;
  port: number;
  admin: string;
  store: string;
  importer: ClientConfigImport;
  typed: ImportedServer[];
  notes: string[];
}

/** A file found at a well-known place (not named by the user): one that cannot be read is noted and skipped. */
function skipUnreadable(answers: Answers, file: string): void {
  try {
    answers.importer.addFile(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    answers.notes.push(`${err.message.replace(/^--import /, "")}: skipped`);
  }
}

async function ask(opts: InitOptions, dir: string, answers: Answers): Promise<void> {
  const p = new Prompter();
  try {
    if (!opts.import?.length) {
      for (const file of wellKnownClientConfigs(dir)) {
        if (await p.confirm(`Import the MCP servers of ${file}?`, true)) skipUnreadable(answers, file);
      }
    }
    const imported = new Set(answers.importer.result().servers.map((s) => s.name));
    process.stderr.write("Add MCP servers to put behind the gateway (an empty name finishes).\n");
    for (;;) {
      const name = await p.ask("Server name (lowercase letters, digits, '-')");
      if (name === "") break;
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name) || imported.has(name)) {
        process.stderr.write(`  '${name}' is not a valid new server name\n`);
        continue;
      }
      const target = await p.ask("  Command line (stdio) or http(s) URL");
      if (target === "") continue;
      answers.typed.push(typedServer(name, target));
      imported.add(name);
    }
    answers.environment = environment(await p.ask("Environment (dev, test, prod, …)", answers.environment));
    answers.port = port(await p.ask("Port", String(answers.port)));
    answers.store = storeSpec(await p.ask("Store ('sqlite' or a postgres:// URL)", answers.store));
    answers.admin = await p.ask("Admin username", answers.admin);
  } finally {
    p.close();
  }
}

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description(
      "first run: write a commented portcullis.yaml (importing the servers of Claude Desktop, Cursor or VS Code), create the store and the first admin, print client configs",
    )
    .option("--dir <dir>", "directory of the portcullis.yaml to write (default: the current one)")
    .option("-y, --yes", "ask nothing: use the options and defaults")
    .option(
      "--import <file>",
      "import the MCP servers of a client config (claude_desktop_config.json, mcp.json); 'auto' finds the well-known ones (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--admin <name>", "username of the first admin", "admin")
    .option("-e, --environment <name>", "environment (dev, test, prod, …)", "dev")
    .option("--store <spec>", "'sqlite' (a file in the data directory) or a postgres:// URL", "sqlite")
    .option("-p, --port <port>", "listen port", "8080")
    .option("--force", "overwrite an existing portcullis.yaml")
    .option("--json", "print what was written and created as one JSON object (the password included, once)")
    .action(async (opts: InitOptions) => {
      const dir = resolve(opts.dir ?? ".");
      const file = join(dir, "portcullis.yaml");
      if (existsSync(file) && !opts.force)
        throw new ConfigError(`${file} already exists; run with --force to overwrite it`);
      const answers: Answers = {
        environment: environment(opts.environment ?? "dev"),
        port: port(opts.port ?? "8080"),
        admin: opts.admin ?? "admin",
        store: storeSpec(opts.store ?? "sqlite"),
        importer: new ClientConfigImport(),
        typed: [],
        notes: [],
      };
      for (const spec of opts.import ?? []) {
        if (spec !== "auto") {
          answers.importer.addFile(resolve(spec));
          continue;
        }
        for (const found of wellKnownClientConfigs(dir)) skipUnreadable(answers, found);
      }
      if (!opts.yes) await ask(opts, dir, answers);
      // The account rule of src/oauth/users.ts, checked before anything is written.
      if (!/^[A-Za-z0-9._@+-]{1,128}$/.test(answers.admin))
        throw new ConfigError(
          `--admin '${answers.admin}': a username is 1-128 characters of letters, digits and . _ @ + -`,
        );

      const imported = answers.importer.result();
      let servers = [...imported.servers, ...answers.typed];
      const notes = [...answers.notes, ...imported.notes];
      if (servers.length === 0) {
        servers = [demoServer()];
        notes.push("no servers imported: the bundled demo server is configured (replace it with your own)");
      }
      const text = renderInitConfig({
        environment: answers.environment,
        host: "127.0.0.1",
        port: answers.port,
        dataDir: ".portcullis",
        store: withoutPassword(answers.store),
        adminGroup: ADMIN_GROUP,
        servers,
      });
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, text, { mode: 0o644 });

      let admin: { username: string; password: string | null; created: boolean };
      let loaded: ReturnType<typeof loadConfig>;
      try {
        loaded = loadConfig({
          config: file,
          ...(isPostgresSpec(answers.store) ? { store: answers.store } : {}),
        });
        // First: it creates the data directory owner-only (mode 0700) before the store goes in it.
        if (!loaded.config.serverSecret) serverSecret(loaded.config, { create: true });
        const store = await openStore(loaded.storeSpec);
        try {
          const exists = (await listUsers(store)).some((u) => u.username === answers.admin);
          if (exists) {
            admin = { username: answers.admin, password: null, created: false };
            notes.push(`user ${answers.admin} already exists in the store: its password is unchanged`);
          } else {
            const password = generatePassword();
            await addUser(
              store,
              { username: answers.admin, password, email: null, groups: [ADMIN_GROUP] },
              cliAudit(store, loaded.config),
            );
            admin = { username: answers.admin, password, created: true };
          }
        } finally {
          await store.close();
        }
      } catch (err) {
        // A config whose store could not be set up is not left behind to be refused next time.
        if (!opts.force) unlinkSync(file);
        throw err;
      }

      if (isPostgresSpec(answers.store) && new URL(answers.store).password !== "")
        notes.push("the store URL's password is not in the config: set PGPASSWORD before starting");
      const config = loaded.config;
      const baseUrl = publicBaseUrl(config, config.listen.port);
      const shown = relative(process.cwd(), file) || file;
      const cli = cliInvocation();
      const storeArgs = `--config ${shellQuote(file)}`;
      const result = {
        config: file,
        environment: config.environment,
        dataDir: config.dataDir,
        store: withoutPassword(loaded.storeSpec),
        url: baseUrl,
        servers: servers.map((s) => ({
          name: s.name,
          transport: s.transport,
          endpoint: `${baseUrl}/mcp/${s.name}`,
          from: s.from,
        })),
        admin,
        variables: imported.variables,
        notes,
        start: `${cli} start --config ${shellQuote(shown)}`,
      };
      print(opts.json, result, () => {
        const out = [`wrote ${file}`, `store ${result.store}`];
        for (const n of notes) out.push(`note: ${n}`);
        if (imported.variables.length > 0) {
          out.push(
            "",
            "These secrets were not written to the config; set each variable to the value it had in the imported file before starting:",
            ...imported.variables.map((v) => `  ${v.variable}   (${v.field})`),
          );
        }
        out.push(
          "",
          admin.password === null
            ? `Admin: ${admin.username} (existing account, password unchanged)`
            : `Admin (console at ${baseUrl}/console and OAuth sign-in), shown ONCE:\n  username: ${admin.username}   password: ${admin.password}`,
          "",
          `Start the gateway with: ${result.start}`,
          `Check the setup with:   ${cli} doctor --config ${shellQuote(shown)}`,
        );
        const banner = welcomeBanner({
          baseUrl,
          servers: servers.map((s) => ({ name: s.name, transport: s.transport })),
          environment: config.environment,
          key: null,
          invocation: cli,
          storeArgs,
          using: `config ${file} (written now); store ${result.store}`,
        }).replace(
          /^Portcullis is running \(environment: ([^)]*)\)$/m,
          "Once started, Portcullis serves (environment: $1):",
        );
        return `${out.join("\n")}\n${banner}`;
      });
    });
}
