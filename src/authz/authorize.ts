/**
 * Authorization of one JSON-RPC request: the typed policy input built from what the earlier
 * stages established (the Principal, the classified message, the tool's risk facts), and the
 * list filter that shows a caller only what policy would let it use. Pure functions; the
 * listener calls them and turns the decision into a response and an audit record.
 */

import type { ClassifiedMessage, JsonObject } from "../classify/message.js";
import { actorChain } from "../core/actor.js";
import type { Actor, Principal, TaskBinding } from "../core/principal.js";
import type {
  ActorFacts,
  CompiledPolicy,
  PolicyDecision,
  PolicyInput,
  ResourceFacts,
  RiskTier,
  TaskFacts,
} from "./policy/types.js";

/** What the gateway knows about a server's tools (annotations seen in tools/list, operator pins). */
export interface ToolFactsSource {
  facts(
    server: string,
    tool: string,
  ): { tier: RiskTier; openWorld: boolean; annotations: Readonly<Record<string, unknown>> };
}

/** Where a request is decided: the deployment, the caller's address, the protocol and the time. */
export interface PolicyEnvironment {
  environment: string;
  sourceAddress: string | null;
  protocolVersion: string | null;
  now: Date;
}

const CLIENT_INFO = "io.modelcontextprotocol/clientInfo";
const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});

/** Methods that act on one named tool, prompt or resource. */
const TARGET_KIND: Readonly<Record<string, ResourceFacts["kind"]>> = {
  "tools/call": "tool",
  "prompts/get": "prompt",
  "resources/read": "resource",
  "resources/subscribe": "resource",
  "resources/unsubscribe": "resource",
};

export function resourceFacts(
  server: string,
  method: string,
  name: string | null,
  tools: ToolFactsSource,
): ResourceFacts {
  const kind = TARGET_KIND[method] ?? "server";
  if (kind === "tool" && name !== null) {
    const f = tools.facts(server, name);
    return { server, kind, name, tier: f.tier, openWorld: f.openWorld, annotations: f.annotations };
  }
  return {
    server,
    kind,
    name: kind === "server" ? null : name,
    tier: null,
    openWorld: null,
    annotations: EMPTY,
  };
}

function objectOr(value: unknown): Readonly<Record<string, unknown>> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonObject) : EMPTY;
}

/** Principals are cached with their credential, so each scope set becomes an array once. */
const SCOPE_LISTS = new WeakMap<ReadonlySet<string>, readonly string[]>();
const NO_SCOPES: readonly string[] = Object.freeze([]);

function scopeList(scopes: ReadonlySet<string> | null): readonly string[] {
  if (scopes === null) return NO_SCOPES;
  let list = SCOPE_LISTS.get(scopes);
  if (list === undefined) {
    list = Object.freeze([...scopes]);
    SCOPE_LISTS.set(scopes, list);
  }
  return list;
}

function secondsBetween(later: Date, earlier: Date): number {
  return Math.floor((later.getTime() - earlier.getTime()) / 1000);
}

function taskFacts(task: TaskBinding | undefined, now: Date): TaskFacts | null {
  if (task === undefined) return null;
  return {
    id: task.id,
    purpose: task.purpose,
    remainingCalls: task.remainingCalls,
    ageSeconds: Math.max(0, secondsBetween(now, task.createdAt)),
  };
}

/** Principals are cached with their credential, so each actor is described once. */
const ACTOR_FACTS = new WeakMap<Actor, ActorFacts>();

function actorFacts(actor: Actor | undefined): ActorFacts | null {
  if (actor === undefined) return null;
  let facts = ACTOR_FACTS.get(actor);
  if (facts === undefined) {
    facts = Object.freeze({ sub: actor.sub, chain: actorChain(actor) });
    ACTOR_FACTS.set(actor, facts);
  }
  return facts;
}

export function policyInput(
  principal: Principal,
  method: string,
  resource: ResourceFacts,
  params: Readonly<Record<string, unknown>>,
  ctx: PolicyEnvironment,
): PolicyInput {
  const client = objectOr(objectOr(params._meta)[CLIENT_INFO]);
  return {
    principal: {
      id: principal.id,
      kind: principal.kind,
      method: principal.method,
      groups: principal.groups,
      scopes: scopeList(principal.oauthScopes),
      tenant: null,
      environment: principal.environment,
      credentialId: principal.credentialId,
      credentialAgeSeconds: principal.issuedAt === null ? null : secondsBetween(ctx.now, principal.issuedAt),
      expiresInSeconds: principal.expiresAt === null ? null : secondsBetween(principal.expiresAt, ctx.now),
    },
    task: taskFacts(principal.task, ctx.now),
    actor: actorFacts(principal.actor),
    action: { method },
    resource,
    context: {
      arguments: objectOr(params.arguments),
      time: ctx.now,
      environment: ctx.environment,
      clientName: typeof client.name === "string" ? client.name : null,
      clientVersion: typeof client.version === "string" ? client.version : null,
      sourceAddress: ctx.sourceAddress,
      protocolVersion: ctx.protocolVersion,
    },
  };
}

/** The decision for a classified request. */
export function authorizeRequest(
  policy: CompiledPolicy,
  principal: Principal,
  server: string,
  msg: ClassifiedMessage,
  tools: ToolFactsSource,
  ctx: PolicyEnvironment,
): { decision: PolicyDecision; resource: ResourceFacts } {
  const method = msg.method ?? "";
  const resource = resourceFacts(server, method, msg.name, tools);
  const params = objectOr(msg.message.params);
  return { decision: policy.decide(policyInput(principal, method, resource, params, ctx)), resource };
}

/** The method whose decision shows or hides each entry of a list. */
export const LIST_ENTRY_METHOD: Readonly<
  Record<string, { method: string; key: "name" | "uri" | "uriTemplate" }>
> = {
  "tools/list": { method: "tools/call", key: "name" },
  "prompts/list": { method: "prompts/get", key: "name" },
  "resources/list": { method: "resources/read", key: "uri" },
  "resources/templates/list": { method: "resources/read", key: "uriTemplate" },
};

/**
 * Whether a list entry is shown: the caller may use it (allow) or may ask for it (review:
 * shown, so the agent can request the approval). Decided with empty arguments.
 */
export function entryVisible(
  policy: CompiledPolicy,
  principal: Principal,
  server: string,
  listMethod: string,
  name: string,
  tools: ToolFactsSource,
  ctx: PolicyEnvironment,
): boolean {
  const entry = LIST_ENTRY_METHOD[listMethod];
  if (entry === undefined) return true;
  const resource = resourceFacts(server, entry.method, name, tools);
  return policy.effect(policyInput(principal, entry.method, resource, EMPTY, ctx)) !== "deny";
}
