/**
 * Management commands (keys, clients, users, approvals, signing keys, tool pins) are audited
 * like requests, hash-chained with a signed checkpoint, so `portcullis audit verify` covers
 * them. Every command run against a store continues the same chain, the operator CLI's
 * (src/audit/sharedChain.ts), rather than starting a one-record chain of its own.
 */
import { userInfo } from "node:os";
import type { AdminAction, AdminAudit } from "../admin/actions.js";
import { userChange, userChangeDetail } from "../admin/userAudit.js";
import { auditKeyFingerprint, loadCheckpointSigner } from "../audit/checkpoints.js";
import { adminRecord } from "../audit/records.js";
import { appendToSharedChain, OPERATOR_CLI_CHAIN } from "../audit/sharedChain.js";
import { serverSecret } from "../authn/serverSecret.js";
import type { Config } from "../config/schema.js";
import type { AuditRecord, KeyOwner, Store } from "../store/types.js";

/**
 * The OS account running this command: the account of the process's user id, never USER or
 * LOGNAME, which whoever runs the command can set to any name. Under root, the account that
 * ran sudo (SUDO_USER: only root can set it, and root can act as anyone anyway). An id without
 * an account name (a container's arbitrary uid) is `uid:<n>`.
 */
export function operatorAccount(): string {
  const uid = process.getuid?.();
  const sudoer = process.env.SUDO_USER?.trim();
  if (uid === 0 && sudoer !== undefined && sudoer !== "" && sudoer !== "root") return sudoer;
  try {
    return userInfo().username;
  } catch {
    return uid === undefined ? "unknown" : `uid:${uid}`;
  }
}

/** Who ran the command, as the audit trail and separation of duties name them. */
export function operatorPrincipal(): string {
  return `operator:${operatorAccount()}`;
}

/** The operator as the owner of a key they create. */
export function operatorOwner(): KeyOwner {
  return { principal: operatorPrincipal(), name: operatorAccount() };
}

/** Commits `records` to the operator CLI's chain, with a signed checkpoint, before returning. */
export async function recordManagement(
  store: Store,
  config: Config,
  records: readonly AuditRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const signer = await loadCheckpointSigner(store, serverSecret(config, { create: true }));
  if (signer.created) {
    // The only moment the store's key is known to be ours: the operator pins it from here.
    process.stderr.write(
      `portcullis: new audit checkpoint key ${signer.keyId} (fingerprint sha256:${auditKeyFingerprint(signer.publicKey)}): keep its public key outside the store (portcullis audit public-key > audit-key.pem) and verify with portcullis audit verify --public-key audit-key.pem\n`,
    );
  }
  await appendToSharedChain(store, signer, OPERATOR_CLI_CHAIN, records);
}

/** A record for one management action. */
export function managementRecord(
  config: Config,
  event: string,
  reason: string,
  fields: Partial<Pick<AuditRecord, "credentialId" | "server" | "tool">> & {
    detail?: Record<string, unknown>;
  } = {},
): AuditRecord {
  return adminRecord(
    config.environment,
    { principal: operatorPrincipal(), method: "cli" },
    reason,
    { event, ...(fields.detail ?? {}) },
    { credentialId: fields.credentialId ?? null, server: fields.server ?? null, tool: fields.tool ?? null },
  );
}

/** The CLI's record of an action taken through src/admin/ (events as docs/cli.md lists them). */
function actionRecord(config: Config, action: AdminAction): AuditRecord {
  switch (action.kind) {
    case "key.created": {
      const k = action.key;
      return managementRecord(config, "key.created", `API key ${k.id} (${k.name}) created`, {
        credentialId: k.id,
        detail: { scopes: k.scopes, keyEnvironment: k.environment, expiresAt: k.expiresAt },
      });
    }
    case "key.rotated":
      return managementRecord(
        config,
        "key.rotated",
        `API key ${action.previousId} rotated to ${action.key.id}`,
        {
          credentialId: action.key.id,
          detail: { previous: action.previousId, previousExpiresAt: action.previousExpiresAt },
        },
      );
    case "key.revoked":
      return managementRecord(
        config,
        "key.revoked",
        `API key ${action.key.id} (${action.key.name}) revoked`,
        {
          credentialId: action.key.id,
        },
      );
    case "user.added":
      return managementRecord(config, "user.added", `user ${action.user.username} added`, {
        detail: { userId: action.user.id, groups: action.user.groups },
      });
    case "user.removed":
      return managementRecord(config, "user.removed", `user ${action.username} removed`);
    case "user.groups_set":
    case "user.password_reset":
    case "user.disabled":
    case "user.enabled":
    case "user.consent_revoked":
      return managementRecord(config, action.kind, userChange(action), {
        detail: userChangeDetail(action),
      });
    case "client.revoked":
      return managementRecord(config, "client.changed", "machine client revoked", {
        credentialId: action.clientId,
      });
    case "tool.accepted":
      return managementRecord(config, "tool.accepted", "tool definition accepted", {
        server: action.server,
        tool: action.tool,
        detail: { previousHash: action.previousHash, pinnedHash: action.pinnedHash },
      });
  }
}

/** How src/admin/ operations run from the command line are audited: one committed record each. */
export function cliAudit(store: Store, config: Config): AdminAudit {
  return (action) => recordManagement(store, config, [actionRecord(config, action)]);
}
