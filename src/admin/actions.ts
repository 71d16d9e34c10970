/**
 * The administrative actions that change what the gateway accepts (keys, accounts, machine
 * clients), as src/admin/ reports them to the face that ran them. Every operation in this
 * folder reports its change through an {@link AdminAudit} before it returns, so neither the
 * CLI nor the console can make a change that leaves no audit record; each face writes the
 * record its own way (the CLI as `method: "cli"` management records, docs/cli.md; the console
 * as `method: "console"` records, docs/console.md).
 */
import type { LocalUser } from "../oauth/users.js";
import type { ApiKeyRecord } from "../store/types.js";

export type AdminAction =
  | { kind: "key.created"; key: ApiKeyRecord }
  | { kind: "key.rotated"; previousId: string; previousExpiresAt: Date; key: ApiKeyRecord }
  | { kind: "key.revoked"; key: ApiKeyRecord }
  | { kind: "user.added"; user: LocalUser }
  | { kind: "user.removed"; username: string }
  | { kind: "user.groups_set"; user: LocalUser; previous: string[] }
  | { kind: "user.password_reset"; user: LocalUser; generated: boolean }
  | { kind: "user.disabled"; user: LocalUser; grantsRevoked: number }
  | { kind: "user.enabled"; user: LocalUser }
  | { kind: "user.consent_revoked"; user: LocalUser; clientId: string; grantsRevoked: number }
  | { kind: "client.revoked"; clientId: string }
  | {
      kind: "tool.accepted";
      server: string;
      tool: string;
      previousHash: string | null;
      pinnedHash: string | null;
    };

/** Records one action durably (or throws): the operation that called it has already happened. */
export type AdminAudit = (action: AdminAction) => Promise<void>;
