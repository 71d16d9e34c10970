/**
 * `portcullis audit verify|public-key|tail|search|export`: the tamper-evident audit trail
 * (docs/audit.md). `verify` exits 0 when every chain is intact, 1 when one is broken or
 * nothing outside the store vouches for the keys (for cron), 2 on a usage error. None of
 * these needs the server secret; `verify` and `public-key` use it when it is there.
 */
import { createPublicKey } from "node:crypto";
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command, CommanderError } from "commander";
import { auditKeyFingerprint, keySealedUnder } from "../audit/checkpoints.js";
import { auditRecordLine, auditRecordView, otelLogsDocument } from "../audit/export.js";
import { parseLoggedCheckpoints } from "../audit/loggedCheckpoints.js";
import { recordTask } from "../audit/taskDetail.js";
import {
  type KeyTrust,
  normaliseFingerprint,
  parsePublicKeys,
  pinnedTrust,
  serverSecretTrust,
  storeTrust,
} from "../audit/trust.js";
import { type VerifyReport, verifyAuditLog } from "../audit/verify.js";
import { serverSecret } from "../authn/serverSecret.js";
import { ConfigError, type LoadedConfig } from "../config/load.js";
import type { AuditQuery, Store, StoredAuditRecord } from "../store/types.js";
import type { CliDeps } from "./commandDeps.js";
import { table } from "./table.js";

const DURATION = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `--since`/`--until`: an ISO 8601 instant, or a duration back from now (`15m`, `24h`, `7d`). */
export function parseInstant(value: string, flag: string, now = Date.now()): Date {
  const d = DURATION.exec(value);
  if (d) return new Date(now - Number(d[1]) * (UNIT_MS[d[2] as string] as number));
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new ConfigError(`${flag} '${value}': use an ISO 8601 time or a duration such as 15m, 24h, 7d`);
  return new Date(t);
}

function parseLimit(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ConfigError(`--limit '${value}': must be a non-negative integer`);
  return n;
}

interface FilterOpts {
  principal?: string;
  method?: string;
  server?: string;
  tool?: string;
  decision?: string;
  decisionId?: string;
  task?: string;
  since?: string;
  until?: string;
}

function query(opts: FilterOpts): AuditQuery {
  const q: AuditQuery = {};
  if (opts.decision !== undefined) {
    if (!["allow", "deny", "review"].includes(opts.decision)) {
      throw new ConfigError(`--decision '${opts.decision}': must be allow, deny or review`);
    }
    q.decision = opts.decision as AuditQuery["decision"] & string;
  }
  if (opts.principal !== undefined) q.principal = opts.principal;
  if (opts.method !== undefined) q.method = opts.method;
  if (opts.server !== undefined) q.server = opts.server;
  if (opts.tool !== undefined) q.tool = opts.tool;
  if (opts.decisionId !== undefined) q.decisionId = opts.decisionId;
  if (opts.task !== undefined) {
    if (opts.task.trim() === "" || opts.task.length > 200) {
      throw new ConfigError(`--task '${opts.task}': a task id (as \`tasks list\` shows it)`);
    }
    q.taskId = opts.task;
  }
  if (opts.since !== undefined) q.since = parseInstant(opts.since, "--since");
  if (opts.until !== undefined) q.until = parseInstant(opts.until, "--until");
  return q;
}

/** Commander's own usage errors exit 2, like ours (1 means "the audit log is broken"). */
function usageExit(cmd: Command): Command {
  return cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });
}

/** `audit search`: one aligned table (`tail` streams one line per record instead). */
function recordsTable(records: StoredAuditRecord[], withActor = false): string {
  return table(
    records.map((r) => ({
      at: r.at.toISOString(),
      decision: r.decision,
      principal: r.principal,
      actor: recordTask(r.detail).actor?.join(" ← ") ?? null,
      target:
        [r.server, r.tool ?? r.rpcMethod].filter(Boolean).join(" ") ||
        (typeof r.detail?.event === "string" ? r.detail.event : null),
      reason: r.reason,
    })),
    withActor
      ? ["at", "decision", "principal", "actor", "target", "reason"]
      : ["at", "decision", "principal", "target", "reason"],
    "(no matching records)",
  );
}

function writeRecords(records: StoredAuditRecord[], json: boolean | undefined): void {
  for (const r of records) {
    process.stdout.write(`${json ? JSON.stringify(auditRecordView(r)) : auditRecordLine(r)}\n`);
  }
}

interface VerifyOpts {
  chain?: string;
  publicKey: string[];
  keyFingerprint: string[];
  checkpoints: string[];
  trustStoreKeys?: boolean;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readFlagFile(file: string, flag: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`${flag} '${file}': ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readServerSecret(loaded: LoadedConfig): Buffer | null {
  try {
    return serverSecret(loaded.config, { create: false });
  } catch {
    return null;
  }
}

/** Pinned keys when given, else the server secret when this machine has it, else the store's own. */
async function resolveTrust(store: Store, opts: VerifyOpts, loaded: LoadedConfig): Promise<KeyTrust> {
  const stored = await store.listAuditSigningKeys();
  if (opts.publicKey.length > 0 || opts.keyFingerprint.length > 0) {
    const publicKeys = opts.publicKey.flatMap((file) => {
      const text = readFlagFile(file, "--public-key");
      try {
        return parsePublicKeys(text, `--public-key '${file}'`);
      } catch (err) {
        throw new ConfigError(err instanceof Error ? err.message : String(err));
      }
    });
    let fingerprints: string[];
    try {
      fingerprints = opts.keyFingerprint.map(normaliseFingerprint);
    } catch (err) {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    }
    return pinnedTrust(stored, { publicKeys, fingerprints });
  }
  const secret = readServerSecret(loaded);
  return secret === null ? storeTrust(stored) : serverSecretTrust(stored, secret);
}

function verifyText(report: VerifyReport, ok: boolean, opts: VerifyOpts): string {
  const lines: string[] = [];
  const ids = report.trust.keys.join(", ") || "none of the store's keys";
  if (report.trust.source === "pinned") lines.push(`trusted keys (pinned): ${ids}`);
  else if (report.trust.source === "server-secret")
    lines.push(`trusted keys (sealed under this gateway's server secret): ${ids}`);
  else
    lines.push(
      `${opts.trustStoreKeys ? "WARNING" : "UNPINNED"}: no key pinned outside the store (--public-key, --key-fingerprint) and no server secret here:`,
      "  this cannot rule out a store rewritten and re-signed with a key inserted into audit_signing_keys.",
    );
  if (report.loggedCheckpoints > 0)
    lines.push(`compared with ${report.loggedCheckpoints} checkpoints from the gateway's log`);
  if (report.trust.untrusted.length > 0)
    lines.push(`not trusted: key(s) ${report.trust.untrusted.join(", ")} in audit_signing_keys`);
  for (const c of report.chains)
    lines.push(
      c.ok
        ? `OK      ${c.chain}  ${c.records} records (seq ${c.firstSeq ?? "-"}..${c.lastSeq ?? "-"}), ${c.checkpoints} checkpoints${c.uncheckpointed > 0 ? `, ${c.uncheckpointed} after the last checkpoint` : ""}`
        : `BROKEN  ${c.chain}  ${c.problem?.kind} at seq ${c.problem?.seq}: ${c.problem?.detail}`,
    );
  for (const p of report.problems) lines.push(`BROKEN  ${p.kind}: ${p.detail}`);
  if (report.unchained > 0 && report.problems.every((p) => p.kind !== "unchained_records"))
    lines.push(`(${report.unchained} records written before the hash chain existed are not verifiable)`);
  const total = report.chains.reduce((n, c) => n + c.records, 0);
  const broken = report.chains.filter((c) => !c.ok).length;
  lines.push(
    ok
      ? `audit log intact: ${report.chains.length} chains, ${total} records`
      : report.ok
        ? "audit log NOT VERIFIED: intact only against the keys it holds itself; pass --public-key <file> (or --trust-store-keys to accept that)"
        : `audit log BROKEN: ${broken} of ${report.chains.length} chains${report.problems.length > 0 ? `, ${report.problems.length} problems with the store as a whole` : ""}`,
  );
  return lines.join("\n");
}

export function registerAuditCommands(program: Command, deps: CliDeps): void {
  const audit = program
    .command("audit")
    .description("the tamper-evident audit trail: verify, search, tail, export");

  usageExit(deps.withStoreOptions(audit.command("verify")))
    .description(
      "check every hash chain, signed checkpoint and the registry of chains against keys pinned outside the store; exit 0 intact, 1 broken or unpinned, 2 usage error",
    )
    .option("--chain <id>", "verify only this chain")
    .option(
      "--public-key <file>",
      "trust only the Ed25519 public key(s) in this PEM file (as `audit public-key` printed at first start); repeatable",
      collect,
      [],
    )
    .option(
      "--key-fingerprint <sha256>",
      "trust only the stored key with this SHA-256 fingerprint (printed at first start); repeatable",
      collect,
      [],
    )
    .option(
      "--checkpoints <log file>",
      "compare with the checkpoints the gateway wrote to this log (event audit.checkpoint): shows chains deleted or cut back after they were logged; repeatable",
      collect,
      [],
    )
    .option(
      "--trust-store-keys",
      "with no pinned key and no server secret, accept the keys the store holds (integrity only: a re-signed store passes)",
    )
    .option("--json", "print one JSON object")
    .action(async (opts: VerifyOpts) => {
      await deps.withStore(opts, async (store, loaded) => {
        const trust = await resolveTrust(store, opts, loaded);
        const logged = opts.checkpoints.flatMap((file) =>
          parseLoggedCheckpoints(readFlagFile(file, "--checkpoints")),
        );
        const report = await verifyAuditLog(store, {
          trust,
          ...(opts.chain === undefined ? {} : { chain: opts.chain }),
          ...(opts.checkpoints.length === 0 ? {} : { logged }),
        });
        if (opts.chain !== undefined && report.chains.length === 0) {
          throw new ConfigError(`--chain '${opts.chain}': no such chain`);
        }
        const unpinned = trust.source === "store";
        const ok = report.ok && (!unpinned || opts.trustStoreKeys === true);
        deps.print(opts.json, { ...report, ok, intact: report.ok }, () => verifyText(report, ok, opts));
        if (!ok) process.exitCode = 1;
      });
    });

  usageExit(deps.withStoreOptions(audit.command("public-key")))
    .description(
      "print the Ed25519 public keys that sign audit checkpoints (PEM) with their fingerprints: keep them outside the store for `audit verify --public-key`",
    )
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      await deps.withStore(opts, async (store, loaded) => {
        const stored = await store.listAuditSigningKeys();
        const secret = readServerSecret(loaded);
        const keys = stored.map((k) => ({
          id: k.id,
          algorithm: "Ed25519",
          createdAt: k.createdAt.toISOString(),
          fingerprint: `sha256:${auditKeyFingerprint(createPublicKey(k.publicKey))}`,
          // Whether this gateway's server secret vouches for the key (null: no secret here).
          sealedUnderServerSecret: secret === null ? null : keySealedUnder(k, secret) !== null,
          publicKey: k.publicKey,
        }));
        deps.print(opts.json, keys, () =>
          keys.length === 0
            ? "(no checkpoint key yet: it is generated when the gateway first starts)"
            : keys
                .map(
                  (k) =>
                    `# key ${k.id} (Ed25519, created ${k.createdAt})\n# fingerprint ${k.fingerprint}${k.sealedUnderServerSecret === false ? "\n# WARNING: not sealed under this gateway's server secret: not a key this gateway made" : ""}\n${k.publicKey.trimEnd()}`,
                )
                .join("\n"),
        );
        if (!opts.json && keys.length > 0)
          process.stderr.write(
            "Keep this outside the store (a copy of the database proves nothing about its own keys); check with: portcullis audit verify --public-key <file>\n",
          );
      });
    });

  const filters = (cmd: Command) =>
    cmd
      .option("--principal <id>", "who: principal id")
      .option("--method <m>", "how: api_key, oauth, sign_in (sign-ins, consents, sign-outs), console, cli, …")
      .option("--server <name>", "upstream server")
      .option("--tool <name>", "tool, prompt or resource")
      .option("--decision <effect>", "allow, deny or review")
      .option("--decision-id <id>", "the decision id a refused client was given")
      .option("--task <id>", "one task's history: its creation, every call made with its token, its end")
      .option("--since <time>", "ISO 8601 time or duration back from now (15m, 24h, 7d)")
      .option("--until <time>", "ISO 8601 time or duration back from now");

  usageExit(filters(deps.withStoreOptions(audit.command("search"))))
    .description("find audit records (newest first; a task's history with --task, oldest first)")
    .option("--limit <n>", "at most n records", "100")
    .option("--json", "print JSON Lines")
    .action(async (opts: FilterOpts & { limit?: string; json?: boolean }) => {
      const q = { ...query(opts), limit: parseLimit(opts.limit, 100) };
      // A task's history reads in the order it happened: created, its calls, ended.
      if (q.taskId !== undefined) q.order = "asc";
      await deps.withStore(opts, async (store) => {
        const records = await store.searchAudit(q);
        if (opts.json) writeRecords(records, true);
        else process.stdout.write(`${recordsTable(records, q.taskId !== undefined)}\n`);
      });
    });

  usageExit(deps.withStoreOptions(audit.command("tail")))
    .description("show the latest audit records; -f keeps printing new ones")
    .option("-n, --lines <n>", "how many of the latest records", "20")
    .option("-f, --follow", "keep printing new records")
    .option("--json", "print JSON Lines")
    .action(async (opts: { lines?: string; follow?: boolean; json?: boolean }) => {
      const n = parseLimit(opts.lines, 20);
      await deps.withStore(opts, async (store) => {
        const last = (await store.searchAudit({ limit: n })).reverse();
        writeRecords(last, opts.json);
        if (!opts.follow) return;
        let after = last.at(-1)?.seq ?? (await store.searchAudit({ limit: 1 }))[0]?.seq ?? 0;
        let stop = false;
        const onSignal = () => {
          stop = true;
        };
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        while (!stop) {
          const fresh = await store.searchAudit({ afterSeq: after, order: "asc", limit: 1000 });
          writeRecords(fresh, opts.json);
          if (fresh.length > 0) after = fresh.at(-1)?.seq as number;
          else await sleep(250);
        }
      });
    });

  usageExit(deps.withStoreOptions(audit.command("export")))
    .description(
      "export audit records, oldest first: JSON Lines, or OpenTelemetry logs (OTLP/JSON) for SIEMs",
    )
    .option(
      "--format <format>",
      "jsonl (one record per line) or otel (one OTLP/JSON ExportLogsServiceRequest per line)",
      "jsonl",
    )
    .option("--since <time>", "ISO 8601 time or duration back from now (15m, 24h, 7d)")
    .option("--until <time>", "ISO 8601 time or duration back from now")
    .option("-o, --output <file>", "write to this file instead of standard output")
    .action(async (opts: { format: string; since?: string; until?: string; output?: string }) => {
      if (opts.format !== "jsonl" && opts.format !== "otel") {
        throw new ConfigError(`--format '${opts.format}': must be jsonl or otel`);
      }
      const q = query(opts);
      await deps.withStore(opts, async (store) => {
        const out: WriteStream | NodeJS.WriteStream =
          opts.output === undefined ? process.stdout : createWriteStream(opts.output, { mode: 0o600 });
        const write = (line: string) =>
          new Promise<void>((resolve, reject) => {
            if (out.write(line)) resolve();
            else {
              out.once("drain", resolve);
              out.once("error", reject);
            }
          });
        let after = 0;
        let total = 0;
        let reported = Date.now();
        for (;;) {
          const page = await store.searchAudit({ ...q, afterSeq: after, order: "asc", limit: 500 });
          if (page.length === 0) break;
          if (opts.format === "otel") await write(`${JSON.stringify(otelLogsDocument(page))}\n`);
          else await write(page.map((r) => `${JSON.stringify(auditRecordView(r))}\n`).join(""));
          total += page.length;
          after = page.at(-1)?.seq as number;
          if (Date.now() - reported > 1000) {
            process.stderr.write(`exported ${total} records…\n`);
            reported = Date.now();
          }
        }
        if (out !== process.stdout) await new Promise<void>((r) => (out as WriteStream).end(r));
        process.stderr.write(`exported ${total} records${opts.output ? ` to ${opts.output}` : ""}\n`);
      });
    });
}
