/** Shared inputs for the policy engine tests. */
import type { PolicyInput } from "../../../src/authz/policy/types.js";

export interface InputOverrides {
  principal?: Partial<PolicyInput["principal"]>;
  task?: PolicyInput["task"];
  actor?: PolicyInput["actor"];
  action?: Partial<PolicyInput["action"]>;
  resource?: Partial<PolicyInput["resource"]>;
  context?: Partial<PolicyInput["context"]>;
}

export function makeInput(o: InputOverrides = {}): PolicyInput {
  return {
    principal: {
      id: "key:abc",
      kind: "service",
      method: "api_key",
      groups: [],
      scopes: [],
      tenant: null,
      environment: "prod",
      credentialId: "abc",
      credentialAgeSeconds: 60,
      expiresInSeconds: 3600,
      ...o.principal,
    },
    task: o.task ?? null,
    actor: o.actor ?? null,
    action: { method: "tools/call", ...o.action },
    resource: {
      server: "github",
      kind: "tool",
      name: "get_issue",
      tier: "read",
      openWorld: false,
      annotations: {},
      ...o.resource,
    },
    context: {
      arguments: {},
      time: new Date("2025-06-01T12:00:00Z"),
      environment: "prod",
      clientName: "claude",
      clientVersion: "1.0",
      sourceAddress: "10.0.0.1",
      protocolVersion: "2025-06-18",
      ...o.context,
    },
  };
}

export const policy = (text: string, path = "policies/test.yaml") => [{ path, text }];
