/**
 * The mapping between the rows of ./schema.ts and the records of ./types.ts (API keys and
 * audit). Shared by the SQLite and PostgreSQL stores; docs/storage-schema.md explains
 * every column. Instants are integer epoch milliseconds on both dialects, lists and
 * objects are JSON text, so one mapping serves both.
 */
import type {
  ApiKeysTable,
  AuditChainsTable,
  AuditCheckpointsTable,
  AuditLogTable,
  AuditSigningKeysTable,
} from "./schema.js";
import type {
  ApiKeyRecord,
  AuditChainInfo,
  AuditCheckpoint,
  AuditRecord,
  AuditSigningKeyRecord,
  ChainedAuditRecord,
  NewApiKey,
  StoredAuditRecord,
} from "./types.js";

export type ApiKeyRow = ApiKeysTable;
export type AuditRow = Omit<AuditLogTable, "seq"> & { seq: number };
export type NewAuditRow = Omit<AuditLogTable, "seq">;

const date = (ms: number): Date => new Date(ms);
const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function keyToRow(key: NewApiKey): ApiKeyRow {
  return {
    id: key.id,
    name: key.name,
    environment: key.environment,
    hash: key.hash,
    scopes: JSON.stringify(key.scopes),
    created_at: key.createdAt.getTime(),
    expires_at: key.expiresAt.getTime(),
    revoked_at: null,
    rotated_from: key.rotatedFrom,
    created_by: key.createdBy?.principal ?? null,
    created_by_name: key.createdBy?.name ?? null,
    last_used_at: null,
    use_count: 0,
  };
}

export function rowToKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    environment: row.environment,
    hash: row.hash,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: date(row.created_at),
    expiresAt: date(row.expires_at),
    revokedAt: dateOrNull(row.revoked_at),
    rotatedFrom: row.rotated_from,
    createdBy:
      row.created_by === null
        ? null
        : { principal: row.created_by, name: row.created_by_name ?? row.created_by },
    lastUsedAt: dateOrNull(row.last_used_at),
    useCount: row.use_count,
  };
}

/** Longest task id the index holds; a longer `detail.task` is not indexed (and is no task id). */
const MAX_TASK_ID = 200;

/**
 * The `task_id` index of a record (migration 013): its `detail.task`, which names the task a
 * record is about (src/audit/taskDetail.ts); null when it names none.
 */
export function taskIdIndex(detail: Readonly<Record<string, unknown>> | null): string | null {
  const task = detail?.task;
  return typeof task === "string" && task !== "" && task.length <= MAX_TASK_ID ? task : null;
}

/** The same index from a stored row's `detail` text, for `audit verify` to compare with `task_id`. */
export function taskIdIndexOfText(detail: string | null): string | null {
  // Most records name no task: skip the parse.
  if (detail === null || !detail.includes('"task"')) return null;
  try {
    const parsed: unknown = JSON.parse(detail);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? taskIdIndex(parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

export function auditToRow(record: AuditRecord): NewAuditRow {
  return {
    at: record.at.getTime(),
    environment: record.environment,
    principal: record.principal,
    method: record.method,
    credential_id: record.credentialId,
    server: record.server,
    rpc_method: record.rpcMethod,
    tool: record.tool,
    decision: record.decision,
    reason: record.reason,
    latency_us: Math.round(record.latencyUs),
    detail: record.detail === null ? null : JSON.stringify(record.detail),
    decision_id: record.decisionId ?? null,
    policy_version: record.policyVersion ?? null,
    rule_ids: record.ruleIds === undefined || record.ruleIds === null ? null : JSON.stringify(record.ruleIds),
    chain: null,
    chain_seq: null,
    prev_hash: null,
    hash: null,
    arguments: null,
    task_id: taskIdIndex(record.detail),
  };
}

/** A chained record's row: the columns src/audit/chain.ts hashes, exactly as they are stored. */
export function chainedAuditToRow(record: ChainedAuditRecord): NewAuditRow {
  return {
    ...auditToRow({ ...record, arguments: undefined }),
    chain: record.chain,
    chain_seq: record.chainSeq,
    prev_hash: record.prevHash,
    hash: record.hash,
    arguments: record.arguments,
  };
}

export function rowToAuditChain(row: AuditChainsTable): AuditChainInfo {
  return {
    chain: row.chain,
    startedAt: date(row.started_at),
    host: row.host,
    pid: Number(row.pid),
    anchorSeq: Number(row.anchor_seq),
    anchorHash: row.anchor_hash,
    anchorProof:
      row.anchor_at === null || row.anchor_key_id === null || row.anchor_signature === null
        ? null
        : { at: date(Number(row.anchor_at)), keyId: row.anchor_key_id, signature: row.anchor_signature },
    registration:
      row.reg_seq === null ||
      row.prev_reg_hash === null ||
      row.reg_hash === null ||
      row.reg_key_id === null ||
      row.reg_signature === null
        ? null
        : {
            seq: Number(row.reg_seq),
            prevHash: row.prev_reg_hash,
            hash: row.reg_hash,
            legacy: row.reg_legacy,
            keyId: row.reg_key_id,
            signature: row.reg_signature,
          },
  };
}

export function checkpointToRow(c: AuditCheckpoint): AuditCheckpointsTable {
  return {
    chain: c.chain,
    chain_seq: c.chainSeq,
    hash: c.hash,
    count: c.count,
    at: c.at.getTime(),
    key_id: c.keyId,
    signature: c.signature,
    registry_seq: c.registry?.seq ?? null,
    registry_hash: c.registry?.hash ?? null,
  };
}

export function rowToCheckpoint(row: AuditCheckpointsTable): AuditCheckpoint {
  return {
    chain: row.chain,
    chainSeq: Number(row.chain_seq),
    hash: row.hash,
    count: Number(row.count),
    at: date(Number(row.at)),
    keyId: row.key_id,
    signature: row.signature,
    registry:
      row.registry_seq === null || row.registry_hash === null
        ? null
        : { seq: Number(row.registry_seq), hash: row.registry_hash },
  };
}

export function rowToAuditSigningKey(row: AuditSigningKeysTable): AuditSigningKeyRecord {
  return {
    id: row.id,
    publicKey: row.public_key,
    privateKeySealed: row.private_key_sealed,
    createdAt: date(Number(row.created_at)),
  };
}

export function rowToAudit(row: AuditRow): StoredAuditRecord {
  return {
    seq: row.seq,
    at: date(row.at),
    environment: row.environment,
    principal: row.principal,
    method: row.method,
    credentialId: row.credential_id,
    server: row.server,
    rpcMethod: row.rpc_method,
    tool: row.tool,
    decision: row.decision as AuditRecord["decision"],
    reason: row.reason,
    latencyUs: row.latency_us,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
    decisionId: row.decision_id,
    policyVersion: row.policy_version,
    ruleIds: row.rule_ids === null ? null : (JSON.parse(row.rule_ids) as string[]),
    // Chain facts only on chained records (migration 006): older ones read back as before.
    ...(row.chain === null || row.chain === undefined
      ? {}
      : { chain: row.chain, chainSeq: Number(row.chain_seq), prevHash: row.prev_hash, hash: row.hash }),
    ...(row.arguments === null || row.arguments === undefined
      ? {}
      : { arguments: JSON.parse(row.arguments) as unknown }),
  };
}
