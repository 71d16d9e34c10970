/**
 * The copy of every checkpoint that the gateway writes to its own log (`event:
 * "audit.checkpoint"`), compared with the store (`portcullis audit verify --checkpoints
 * <log file>`). The store alone cannot show a rollback: an intruder who deletes the newest
 * chains, or cuts a chain back to an older checkpoint, leaves a store that is consistent with
 * itself. A logged checkpoint signed by a trusted key that the store no longer backs (its
 * chain gone, or its record missing or different and not purged by retention) shows it.
 */
import type { KeyObject } from "node:crypto";
import type { Logger } from "pino";
import type { AuditCheckpoint, Store } from "../store/types.js";
import { checkpointSignatureValid } from "./checkpoints.js";

export interface LoggedCheckpointProblem {
  kind: "deleted_chain" | "truncated" | "checkpoint_mismatch" | "forged_checkpoint";
  chain: string;
  detail: string;
}

/**
 * Writes the copy of a checkpoint the store just committed (the writer calls it): a copy
 * outside the store, so a truncated store cannot also erase what the log shipped.
 */
export function logCheckpoint(log: Pick<Logger, "info">, c: AuditCheckpoint): void {
  log.info(
    {
      event: "audit.checkpoint",
      chain: c.chain,
      seq: c.chainSeq,
      hash: c.hash,
      at: c.at.getTime(),
      registry: c.registry ?? null,
      keyId: c.keyId,
      signature: c.signature,
    },
    "audit checkpoint",
  );
}

/** The checkpoints in a log (JSON lines; other lines are skipped). */
export function parseLoggedCheckpoints(text: string): AuditCheckpoint[] {
  const out: AuditCheckpoint[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes('"audit.checkpoint"')) continue;
    let v: Record<string, unknown>;
    try {
      v = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (v.event !== "audit.checkpoint" || typeof v.chain !== "string" || typeof v.at !== "number") continue;
    const registry = v.registry as { seq?: unknown; hash?: unknown } | null | undefined;
    out.push({
      chain: v.chain,
      chainSeq: Number(v.seq),
      hash: String(v.hash),
      count: Number(v.seq),
      at: new Date(v.at),
      keyId: String(v.keyId),
      signature: String(v.signature),
      registry:
        registry != null && typeof registry.seq === "number" && typeof registry.hash === "string"
          ? { seq: registry.seq, hash: registry.hash }
          : null,
    });
  }
  return out;
}

export async function compareLoggedCheckpoints(
  store: Store,
  logged: readonly AuditCheckpoint[],
  keys: ReadonlyMap<string, KeyObject>,
): Promise<LoggedCheckpointProblem[]> {
  const all = await store.listAuditChains();
  const chains = new Map(all.map((c) => [c.chain, c]));
  const registry = new Map(
    all.flatMap((c) => (c.registration ? [[c.registration.seq, c.registration.hash]] : [])),
  );
  const problems: LoggedCheckpointProblem[] = [];
  for (const c of logged) {
    const where = `logged checkpoint ${c.chain}@${c.chainSeq}`;
    if (!checkpointSignatureValid(c, keys)) {
      problems.push({
        kind: "forged_checkpoint",
        chain: c.chain,
        detail: `${where} is not signed by a trusted key (a log of another gateway, or an edited log)`,
      });
      continue;
    }
    const info = chains.get(c.chain);
    if (info === undefined) {
      problems.push({
        kind: "deleted_chain",
        chain: c.chain,
        detail: `${where}: the store has no such chain`,
      });
      continue;
    }
    if (c.registry != null && registry.get(c.registry.seq) !== c.registry.hash) {
      problems.push({
        kind: "deleted_chain",
        chain: c.chain,
        detail: `${where} saw registry entry ${c.registry.seq}, which the store no longer has: chains registered by then were deleted`,
      });
    }
    if (c.chainSeq <= info.anchorSeq) continue; // purged by retention (verify checks the anchor)
    const [row] = await store.readAuditChain(c.chain, c.chainSeq - 1, 1);
    if (row === undefined || row.chain_seq !== c.chainSeq) {
      problems.push({
        kind: "truncated",
        chain: c.chain,
        detail: `${where}: record ${c.chainSeq} is missing from the store`,
      });
    } else if (row.hash !== c.hash) {
      problems.push({
        kind: "checkpoint_mismatch",
        chain: c.chain,
        detail: `${where}: record ${c.chainSeq} differs from what the gateway signed and logged`,
      });
    }
  }
  return problems;
}
