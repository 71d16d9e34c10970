/**
 * A gateway whose policy sends the demo server's destructive `delete_note` to review (60 s)
 * and `reset_notebook` to a 2-second review (the timeout path); everything else is allowed.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO_SERVER, type RunningGateway, runCli, startGateway, tempDir } from "../helpers/gateway.js";

export const REVIEW_POLICY = `
rules:
  - id: test-allow-the-rest
    effect: allow
  - id: delete-note-needs-review
    effect: review
    match: { methods: [tools/call], servers: [demo], tools: [delete_note] }
    review: { timeoutSeconds: 60 }
  - id: reset-needs-quick-review
    effect: review
    match: { methods: [tools/call], servers: [demo], tools: [reset_notebook] }
    review: { timeoutSeconds: 2 }
`;

export async function startReviewGateway(
  extra: Record<string, unknown> = {},
  env: Record<string, string> = {},
): Promise<RunningGateway> {
  const dir = tempDir("portcullis-review-");
  const policyFile = join(dir, "review-policy.yaml");
  writeFileSync(policyFile, REVIEW_POLICY);
  return startGateway({
    dir,
    config: {
      environment: "test",
      policy: { paths: [policyFile] },
      servers: { demo: { transport: "stdio", command: process.execPath, args: [DEMO_SERVER] } },
      review: { retryHoldSeconds: 1, progressIntervalSeconds: 1, ...((extra.review as object) ?? {}) },
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== "review")),
    },
    env,
  });
}

/**
 * `portcullis approvals …` as the operator named by `--by <name>` in `args`: the CLI takes its
 * approver from the OS account, never from a typed name, so the test runs it as another
 * operator the way sudo does (SUDO_USER, trusted from root only). Without `--by`: as this
 * process's own account, which created the test's keys (their owner).
 */
function asOperator(args: string[]): { args: string[]; env: Record<string, string> } {
  const at = args.indexOf("--by");
  if (at < 0) return { args, env: {} };
  const name = args[at + 1] ?? "";
  if (process.getuid?.() !== 0)
    throw new Error("approving as another operator needs root (SUDO_USER is trusted from root only)");
  return { args: [...args.slice(0, at), ...args.slice(at + 2)], env: { SUDO_USER: name } };
}

/** `portcullis approvals …` expecting success. */
export async function approvals(gw: RunningGateway, args: string[]): Promise<unknown> {
  const op = asOperator(args);
  const r = await runCli(["approvals", ...op.args, "--config", gw.configFile, "--json"], op.env);
  if (r.code !== 0)
    throw new Error(`approvals ${args.join(" ")} failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

/** `portcullis approvals …` as run, for refusals. */
export function approvalsRaw(gw: RunningGateway, args: string[]) {
  const op = asOperator(args);
  return runCli(["approvals", ...op.args, "--config", gw.configFile, "--json"], op.env);
}

/** Waits until a pending approval for `tool` shows up in `approvals list --pending`. */
export async function pendingApproval(
  gw: RunningGateway,
  tool: string,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const list = (await approvals(gw, ["list", "--pending"])) as Record<string, unknown>[];
    const found = list.find((a) => a.tool === tool);
    if (found) return found;
    if (Date.now() > until) throw new Error(`no pending approval for ${tool}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
