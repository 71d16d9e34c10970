/**
 * "May this caller call this tool", written once. Three clauses, in this order:
 *
 * 1. the credential's tool scope (an API key scoped to `server:tool` patterns);
 * 2. the tool pin: a tool whose definition changed since it was pinned is blocked until an
 *    operator accepts it (pinning.onChange: block);
 * 3. policy.
 *
 * A `tools/call` meets each clause as its own pipeline stage (each refusal has its own
 * code and audit reason: src/pipeline/stages/credentialScope.ts, toolPins.ts, policy.ts);
 * a `tools/list` result shows a tool only when all three would let the caller ask for it
 * (policy `allow` or `review`, decided with empty arguments). Both read the methods below.
 */
import type { ClassifiedMessage } from "../classify/message.js";
import type { Principal } from "../core/principal.js";
import { allowsTool } from "../core/scope.js";
import { authorizeRequest, entryVisible, type PolicyEnvironment, type ToolFactsSource } from "./authorize.js";
import type { CompiledPolicy, PolicyDecision, ResourceFacts } from "./policy/types.js";

/** The tool pins the gateway keeps (src/authz/toolCatalogue.ts). */
export interface ToolPins {
  /** True while a changed tool waits for an operator's acceptance. */
  blocked(server: string, tool: string): boolean;
}

export class CallRule {
  constructor(
    private readonly pins: ToolPins,
    private readonly tools: ToolFactsSource,
  ) {}

  /** Clause 1: the credential reaches this tool (always true for server-wide credentials). */
  inScope(principal: Principal, server: string, tool: string): boolean {
    return allowsTool(principal.scopes, server, tool);
  }

  /** Clause 2: the tool's definition changed since it was pinned and is not yet accepted. */
  blocked(server: string, tool: string): boolean {
    return this.pins.blocked(server, tool);
  }

  /** Clause 3 for one request, with its arguments: the policy decision and the target's facts. */
  decide(
    policy: CompiledPolicy,
    principal: Principal,
    server: string,
    msg: ClassifiedMessage,
    env: PolicyEnvironment,
  ): { decision: PolicyDecision; resource: ResourceFacts } {
    return authorizeRequest(policy, principal, server, msg, this.tools, env);
  }

  /**
   * Whether an entry of a list result is shown: for tools, all three clauses (policy decided
   * with empty arguments, `review` shown so the agent can ask for the approval); prompts and
   * resources meet policy only.
   */
  visible(
    policy: CompiledPolicy,
    principal: Principal,
    server: string,
    listMethod: string,
    name: string,
    env: PolicyEnvironment,
  ): boolean {
    if (listMethod === "tools/list" && (!this.inScope(principal, server, name) || this.blocked(server, name)))
      return false;
    return entryVisible(policy, principal, server, listMethod, name, this.tools, env);
  }
}
