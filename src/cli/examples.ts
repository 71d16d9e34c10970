/**
 * The "Examples:" section of every command's `--help`, kept in one place so that command
 * modules stay about behaviour. {@link addExamples} walks whatever commands are registered
 * (call it after registering, and again after registering more: a command gets its section
 * once). Every example is a command that works as written against a gateway's store (run from
 * the directory of its `portcullis.yaml`, or with `--config`); ids such as `4fT0qk2LxW9a`
 * stand for one `list` printed. test/e2e/cli-help-examples.test.ts checks that every
 * command has examples and runs some of them.
 */
import type { Command } from "commander";

/** Command path (names joined by spaces; "" is `portcullis` itself) → example command lines. */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  "": [
    "portcullis start",
    "portcullis keys create --name my-agent --expires 30d",
    "portcullis policy explain --principal method=api_key --server demo --tool get_time",
  ],
  start: [
    "portcullis start",
    "portcullis start --config portcullis.yaml",
    "portcullis start --port 9090 --environment test",
  ],
  keys: ["portcullis keys create --name ci --servers demo --expires 7d", "portcullis keys list --all"],
  "keys create": [
    "portcullis keys create --name nightly-sync --servers demo --expires 30d",
    "portcullis keys create --name reader --servers 'demo:get_*,demo:search_*' --json",
  ],
  "keys list": ["portcullis keys list", "portcullis keys list --all --json"],
  "keys show": ["portcullis keys show 4fT0qk2LxW9a", "portcullis keys show 4fT0qk2LxW9a --json"],
  "keys revoke": ["portcullis keys revoke 4fT0qk2LxW9a"],
  "keys rotate": [
    "portcullis keys rotate 4fT0qk2LxW9a --overlap 3600",
    "portcullis keys rotate 4fT0qk2LxW9a --overlap 0 --json",
  ],
  tasks: [
    "portcullis tasks start --owner key:4fT0qk2LxW9a --servers demo:get_time --ttl 15m --purpose 'nightly triage' --json",
    "portcullis tasks list",
  ],
  "tasks start": [
    "portcullis tasks start --owner key:4fT0qk2LxW9a --servers demo:get_time --ttl 15m --purpose 'nightly triage' --json",
    "portcullis tasks start --owner user:alice --servers demo:search_notes,demo:get_time --ttl 1h --budget 50 --actor agent-7 --purpose 'weekly report'",
  ],
  "tasks list": ["portcullis tasks list", "portcullis tasks list --all --json"],
  "tasks show": [
    "portcullis tasks show tsk_9QwJ3kZP0aLr5XbVc2dE1fG4",
    "portcullis tasks show tsk_9QwJ3kZP0aLr5XbVc2dE1fG4 --json",
  ],
  "tasks end": [
    "portcullis tasks end tsk_9QwJ3kZP0aLr5XbVc2dE1fG4",
    "portcullis tasks end tsk_9QwJ3kZP0aLr5XbVc2dE1fG4 --json",
  ],
  init: [
    "portcullis init",
    "portcullis init --yes --import auto",
    "portcullis init --yes --import ~/.cursor/mcp.json --admin alice --port 9000",
  ],
  doctor: ["portcullis doctor", "portcullis doctor --config portcullis.yaml --no-probe --json"],
  servers: ["portcullis servers list", "portcullis servers status"],
  "servers list": ["portcullis servers list", "portcullis servers list --json"],
  "servers status": ["portcullis servers status", "portcullis servers status --json"],
  users: ["portcullis users add alice --groups staff", "portcullis users list"],
  "users set-groups": ["portcullis users set-groups alice staff,oncall"],
  "users reset-password": [
    "portcullis users reset-password alice",
    "printf '%s\\n' \"$PASSWORD\" | portcullis users reset-password alice --password-stdin",
  ],
  "users disable": ["portcullis users disable alice"],
  "users enable": ["portcullis users enable alice"],
  "users consents": ["portcullis users consents alice", "portcullis users consents alice --json"],
  "users revoke-consent": ["portcullis users revoke-consent alice 3f6c0d9e-client-id"],
  "users add": [
    "portcullis users add alice --email alice@example.com --groups staff,oncall",
    "printf '%s\\n' \"$PASSWORD\" | portcullis users add bob --password-stdin",
  ],
  "users list": ["portcullis users list", "portcullis users list --json"],
  "users remove": ["portcullis users remove alice"],
  clients: [
    "portcullis clients create --name legacy-job --auth client_secret_basic",
    "portcullis clients list",
  ],
  "clients create": [
    "portcullis clients create --name nightly-report --auth private_key_jwt --public-key report.pub.pem --servers demo",
    "portcullis clients create --name legacy-job --auth client_secret_basic --expires 30d --json",
  ],
  "clients list": ["portcullis clients list", "portcullis clients list --json"],
  "clients show": ["portcullis clients show mc_0a1B2c3D4e5F6g7H8i9J0k"],
  "clients revoke": ["portcullis clients revoke mc_0a1B2c3D4e5F6g7H8i9J0k"],
  tools: ["portcullis tools list --changed", "portcullis tools show demo get_time"],
  "tools list": ["portcullis tools list", "portcullis tools list --server demo --changed --json"],
  "tools show": ["portcullis tools show demo get_time", "portcullis tools show demo get_time --json"],
  "tools accept": ["portcullis tools accept demo get_time", "portcullis tools accept demo --all"],
  policy: [
    "portcullis policy check",
    "portcullis policy explain --principal method=api_key --server demo --tool get_time",
  ],
  "policy check": ["portcullis policy check", "portcullis policy check policies/ --json"],
  "policy test": [
    "portcullis policy test cases.yaml",
    "portcullis policy test cases.yaml --policy policies/ --json",
  ],
  "policy explain": [
    "portcullis policy explain --principal method=api_key --server demo --tool get_time",
    "portcullis policy explain --principal method=oauth,kind=user,scopes=mcp,expiresIn=3600 --server demo --tool add_note --tier write",
    `portcullis policy explain --principal method=api_key --server demo --tool echo --args '{"text":"hi"}' --json`,
  ],
  "policy decision": [
    "portcullis policy decision 3kS9dQ2mX7pL",
    "portcullis policy decision 3kS9dQ2mX7pL --json",
  ],
  approvals: [
    "portcullis approvals list --pending",
    "portcullis approvals approve apr_0a1B2c3D --reason 'checked with the requester'",
  ],
  "approvals list": ["portcullis approvals list --pending", "portcullis approvals list --limit 20 --json"],
  "approvals approve": ["portcullis approvals approve apr_0a1B2c3D --reason 'checked with the requester'"],
  "approvals deny": ["portcullis approvals deny apr_0a1B2c3D --reason 'not during the freeze'"],
  audit: ["portcullis audit verify --public-key audit-key.pem", "portcullis audit tail -n 50"],
  "audit verify": [
    "portcullis audit public-key > audit-key.pem",
    "portcullis audit verify --public-key audit-key.pem",
    "portcullis audit verify --checkpoints gateway.log --json",
  ],
  "audit public-key": ["portcullis audit public-key > audit-key.pem", "portcullis audit public-key --json"],
  "audit search": [
    "portcullis audit search --decision deny --since 24h",
    "portcullis audit search --server demo --tool add_note --limit 20 --json",
    "portcullis audit search --task tsk_9QwJ3kZP0aLr5XbVc2dE1fG4 --json",
  ],
  "audit tail": ["portcullis audit tail -n 50", "portcullis audit tail -f --json"],
  "audit export": [
    "portcullis audit export --since 7d -o audit.jsonl",
    "portcullis audit export --format otel --since 24h > audit-otel.jsonl",
  ],
  oauth: ["portcullis oauth signing-keys list", "portcullis oauth signing-keys rotate"],
  "oauth signing-keys": ["portcullis oauth signing-keys list", "portcullis oauth signing-keys rotate --json"],
  "oauth signing-keys list": [
    "portcullis oauth signing-keys list",
    "portcullis oauth signing-keys list --json",
  ],
  "oauth signing-keys rotate": [
    "portcullis oauth signing-keys rotate",
    "portcullis oauth signing-keys rotate --compromised",
  ],
};

/** The command's path below the program: "keys create", "" for the program itself. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

const done = new WeakSet<Command>();

/** Adds "Examples:" to the help of `program` and every command under it that has examples. */
export function addExamples(program: Command): void {
  const visit = (cmd: Command) => {
    const lines = EXAMPLES[commandPath(cmd)];
    if (lines !== undefined && !done.has(cmd)) {
      done.add(cmd);
      cmd.addHelpText("after", `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`);
    }
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
}
