/**
 * How an account change (../admin/users.ts) reads in the audit trail, whichever face made it:
 * the reason names the target user, the detail carries their id and what changed (never a
 * password). The CLI and the console put it in records of their own method and event names.
 */
import type { AdminAction } from "./actions.js";

export type UserChange = Extract<
  AdminAction,
  {
    kind:
      | "user.groups_set"
      | "user.password_reset"
      | "user.disabled"
      | "user.enabled"
      | "user.consent_revoked";
  }
>;

export function userChange(action: UserChange): string {
  const name = action.user.username;
  switch (action.kind) {
    case "user.groups_set":
      return `user ${name}: groups set to [${action.user.groups.join(", ")}]`;
    case "user.password_reset":
      return `user ${name}: password reset`;
    case "user.disabled":
      return `user ${name} disabled (${action.grantsRevoked} grants revoked)`;
    case "user.enabled":
      return `user ${name} enabled`;
    case "user.consent_revoked":
      return `user ${name}: consent to client ${action.clientId} revoked (${action.grantsRevoked} grants revoked)`;
  }
}

export function userChangeDetail(action: UserChange): Record<string, unknown> {
  const target = { userId: action.user.id, username: action.user.username };
  switch (action.kind) {
    case "user.groups_set":
      return { ...target, groups: action.user.groups, previousGroups: action.previous };
    case "user.password_reset":
      return { ...target, generated: action.generated };
    case "user.disabled":
      return { ...target, grantsRevoked: action.grantsRevoked };
    case "user.enabled":
      return target;
    case "user.consent_revoked":
      return { ...target, clientId: action.clientId, grantsRevoked: action.grantsRevoked };
  }
}
