/**
 * Creating and ending tasks (docs/tasks.md): the one implementation of {@link TaskMinter} and
 * {@link TaskEnder}, shared by the gateway (the built-in authorization server's RFC 8693 token
 * exchange, the console) and the CLI (`portcullis tasks start|end`).
 *
 * mint(): the request is validated (purpose, lifetime, budget: ./limits.ts; grants:
 * ./grants.ts), must lie within the owner's credential (a task never holds more than its
 * owner), and the policy decides it (./mintPolicy.ts); then the task is stored (announced on
 * the change feed) and its token signed (./taskToken.ts). Every mint decision, allowed or
 * refused, is one audit record, and so is every end.
 */
import { randomBytes } from "node:crypto";
import { eventRecord } from "../audit/records.js";
import type { ToolFactsSource } from "../authz/authorize.js";
import type { CompiledPolicy } from "../authz/policy/types.js";
import type { TasksConfig } from "../config/schema.js";
import type { Actor, Principal } from "../core/principal.js";
import type { AuditRecord, Store, TaskCallOutcome, TaskQuery, TaskRecord } from "../store/types.js";
import { grantBeyondOwner, parseGrants } from "./grants.js";
import { checkLimits } from "./limits.js";
import { checkMintPolicy, MINT_METHOD } from "./mintPolicy.js";
import { CLI_CLIENT_ID, isActor, newJti, newTaskId, resourceOf, TaskKeys } from "./taskToken.js";
import type {
  MintRefusal,
  MintResult,
  Task,
  TaskEnder,
  TaskEndReason,
  TaskMinter,
  TaskOrigin,
  TaskOwner,
  TaskRequest,
} from "./types.js";

export interface TaskServiceOptions {
  store: Store;
  /** The store's signing keys (TaskKeys.load). */
  keys: TaskKeys;
  config: TasksConfig;
  environment: string;
  /** The gateway's public base URL: the tokens' `iss`, and the base of their audiences. */
  issuer: string;
  /** The configured server names: a grant must name one of them. */
  servers: readonly string[];
  /** The policy in force. */
  policy: () => CompiledPolicy;
  /** What is known of each tool (risk tier, annotations): the tool catalogue. */
  tools: ToolFactsSource;
  /** Writes one audit record; awaited when it returns a promise (the CLI's committed chain). */
  record: (record: AuditRecord) => void | Promise<void>;
}

/** A task's record as the domain types describe it (the store keeps the same shape). */
function taskOf(r: TaskRecord): Task {
  return r;
}

function newDecisionId(): string {
  return `tsk-${randomBytes(9).toString("base64url")}`;
}

/** RFC 8693 §4.1: the new actor acts for whoever acted before (the owner's own actor, if any). */
function actorChain(asked: Actor | null | undefined, prior: Actor | undefined): Actor | null {
  if (asked === null || asked === undefined) return prior ?? null;
  if (prior === undefined || asked.act !== undefined) return asked;
  return { ...asked, act: prior };
}

export class TaskService implements TaskMinter, TaskEnder {
  private readonly servers: ReadonlySet<string>;
  /** Tasks this process is ending for their owner's credential (one end each). */
  private readonly ending = new Set<string>();

  constructor(private readonly opts: TaskServiceOptions) {
    this.servers = new Set(opts.servers);
  }

  /** Builds the service over a store: loads the signing keys (created on first use). */
  static async open(
    store: Store,
    secret: Buffer,
    opts: Omit<TaskServiceOptions, "store" | "keys">,
  ): Promise<TaskService> {
    return new TaskService({ ...opts, store, keys: await TaskKeys.load(store, secret) });
  }

  get keys(): TaskKeys {
    return this.opts.keys;
  }

  get issuer(): string {
    return this.opts.issuer;
  }

  async mint(owner: Principal, request: TaskRequest, origin: TaskOrigin): Promise<MintResult> {
    const { opts } = this;
    const decisionId = newDecisionId();
    const now = new Date();
    const policy = opts.policy();
    const refuse = async (
      error: MintRefusal["error"],
      description: string,
      reason: string,
      ruleIds: string[] = [],
    ): Promise<MintRefusal> => {
      await opts.record(
        this.mintRecord("deny", `task refused: ${reason}`, owner, request, origin, {
          decisionId,
          policyVersion: policy.version,
          ruleIds,
          taskId: null,
          error,
        }),
      );
      return { ok: false, error, description, reason, decisionId };
    };

    if (owner.method === "anonymous" || owner.scopes === null)
      return refuse("access_denied", "this caller cannot own a task", "anonymous callers own no task");
    if (owner.environment !== opts.environment)
      return refuse(
        "access_denied",
        "the owner's credential belongs to another environment",
        `owner environment '${owner.environment}' is not '${opts.environment}'`,
      );
    if (owner.method === "api_key") {
      // Whoever built the owner's principal (the CLI reads it from the store), a revoked key owns nothing.
      const key = owner.credentialId === null ? undefined : await opts.store.getKey(owner.credentialId);
      if (key === undefined || key.revokedAt !== null)
        return refuse(
          "access_denied",
          "the owner's key is not live",
          `owner key ${owner.credentialId ?? "(none)"} is ${key === undefined ? "unknown" : "revoked"}`,
        );
    }
    const limits = checkLimits(opts.config, request);
    if (!limits.ok) return refuse(limits.error, limits.reason, limits.reason);
    if (request.actor !== undefined && request.actor !== null && !isActor(request.actor))
      return refuse("invalid_request", "actor: an RFC 8693 actor object", "actor is not an RFC 8693 actor");
    const parsed = parseGrants(request.grants, this.servers);
    if (!parsed.ok) return refuse(parsed.error, parsed.reason, parsed.reason);
    const beyond = grantBeyondOwner(owner.scopes, parsed.grants);
    if (beyond !== null)
      return refuse(
        "invalid_scope",
        `'${beyond.grant}' is more than the owner's credential allows`,
        `grant '${beyond.grant}' is beyond the owner's scopes ${JSON.stringify(owner.scopes.source)}`,
      );

    // Never past the owner credential's own end.
    let expiresMs = now.getTime() + limits.ttlSeconds * 1000;
    for (const limit of [owner.expiresAt, request.ownerExpiresAt ?? null]) {
      if (limit !== null && limit.getTime() < expiresMs) expiresMs = limit.getTime();
    }
    if (expiresMs - now.getTime() < 1000)
      return refuse("access_denied", "the owner's credential has expired", "owner credential expired");

    const pins = new Map<string, string[]>();
    for (const g of parsed.grants) {
      if (pins.has(g.server)) continue;
      pins.set(
        g.server,
        (await opts.store.listToolPins({ server: g.server })).map((p) => p.tool),
      );
    }
    const decided = checkMintPolicy({
      policy,
      owner,
      grants: parsed.grants,
      knownTools: (server) => pins.get(server) ?? [],
      tools: opts.tools,
      environment: opts.environment,
      now,
    });
    if (!decided.ok)
      return refuse("access_denied", "policy refuses this task", decided.reason, decided.ruleIds);

    const taskOwner: TaskOwner & { grantId?: string | null } = {
      id: owner.id,
      kind: owner.kind,
      method: owner.method,
      name: owner.name,
      // A task minted with a task token lives as long as that (parent) task.
      credentialId: owner.method === "task" && owner.task !== undefined ? owner.task.id : owner.credentialId,
      grantId: request.ownerGrantId ?? null,
    };
    const task: Task = {
      id: newTaskId(),
      owner: taskOwner,
      actor: actorChain(request.actor, owner.actor),
      purpose: limits.purpose,
      grants: parsed.grants.map((g) => g.grant),
      environment: opts.environment,
      createdAt: now,
      expiresAt: new Date(expiresMs),
      budget: limits.budget,
      callsUsed: 0,
      endedAt: null,
      endReason: null,
      endedBy: null,
      clientId: request.clientId ?? null,
    };
    const audiences = [...new Set(parsed.grants.map((g) => g.server))].map((s) => resourceOf(opts.issuer, s));
    const token = await opts.keys.sign({
      iss: opts.issuer,
      sub: owner.id,
      aud: audiences,
      iat: Math.floor(now.getTime() / 1000),
      exp: Math.floor(expiresMs / 1000),
      jti: newJti(),
      client_id: task.clientId ?? CLI_CLIENT_ID,
      task_id: task.id,
      ...(task.actor === null ? {} : { act: task.actor }),
      // An OAuth owner's scopes go with the task: the OAuth scope stage holds the task to them.
      ...(owner.oauthScopes === null ? {} : { scope: [...owner.oauthScopes].join(" ") }),
    });
    await opts.store.insertTask(task);
    await opts.record(
      this.mintRecord("allow", `task ${task.id} created`, owner, request, origin, {
        decisionId,
        policyVersion: policy.version,
        ruleIds: decided.ruleIds,
        taskId: task.id,
        task,
      }),
    );
    return { ok: true, decisionId, task, token };
  }

  async end(id: string, reason: TaskEndReason, by: string): Promise<boolean> {
    const ended = await this.opts.store.endTask(id, { at: new Date(), reason, by });
    if (ended) await this.opts.record(this.endRecord(id, reason, by));
    return ended;
  }

  taskIdOf(token: string): Promise<string | null> {
    return this.opts.keys.taskIdOf(token, this.opts.issuer);
  }

  get(id: string): Promise<Task | undefined> {
    return this.opts.store.getTask(id).then((t) => (t === undefined ? undefined : taskOf(t)));
  }

  list(query: TaskQuery = {}): Promise<Task[]> {
    return this.opts.store.listTasks(query).then((ts) => ts.map(taskOf));
  }

  /**
   * Counts one call against a task's budget (atomic in the store, across replicas); the call
   * that spends the last unit ends the task (reason `budget`), recorded.
   */
  async consumeCall(id: string): Promise<TaskCallOutcome> {
    const outcome = await this.opts.store.consumeTaskCall(id, new Date());
    if (outcome.ok && outcome.last) await this.opts.record(this.endRecord(id, "budget", "budget"));
    return outcome;
  }

  /** The verifier found the owner's credential dead: end the task once (reason `owner_revoked`). */
  endForOwner(id: string, why: string): void {
    if (this.ending.has(id)) return;
    this.ending.add(id);
    this.opts.store
      .endTask(id, { at: new Date(), reason: "owner_revoked", by: "owner" })
      .then(async (ended) => {
        if (ended) await this.opts.record(this.endRecord(id, "owner_revoked", "owner", why));
      })
      .catch(() => {})
      .finally(() => this.ending.delete(id));
  }

  private endRecord(id: string, reason: TaskEndReason, by: string, why?: string): AuditRecord {
    return eventRecord(
      this.opts.environment,
      "allow",
      `task ${id} ended (${reason}) by ${by}${why === undefined ? "" : `: ${why}`}`,
      { event: "task.ended", task: id, endReason: reason, endedBy: by },
      { principal: by, method: "tasks", rpcMethod: "tasks/end" },
    );
  }

  private mintRecord(
    decision: "allow" | "deny",
    reason: string,
    owner: Principal,
    request: TaskRequest,
    origin: TaskOrigin,
    facts: {
      decisionId: string;
      policyVersion: string;
      ruleIds: string[];
      taskId: string | null;
      task?: Task;
      error?: string;
    },
  ): AuditRecord {
    const { task } = facts;
    return eventRecord(
      this.opts.environment,
      decision,
      reason,
      {
        event: decision === "allow" ? "task.created" : "task.refused",
        task: facts.taskId,
        origin,
        purpose:
          task?.purpose ?? (typeof request.purpose === "string" ? request.purpose.slice(0, 500) : null),
        grants: task?.grants ?? request.grants.slice(0, 64),
        actor: task?.actor ?? request.actor ?? owner.actor ?? null,
        owner: { id: owner.id, kind: owner.kind, method: owner.method, name: owner.name },
        clientId: request.clientId ?? null,
        ...(task === undefined
          ? { ttlSeconds: request.ttlSeconds ?? null, budget: request.budget ?? null }
          : { expiresAt: task.expiresAt.toISOString(), budget: task.budget }),
        ...(facts.error === undefined ? {} : { error: facts.error }),
      },
      {
        principal: owner.id,
        method: owner.method,
        credentialId: owner.credentialId,
        rpcMethod: MINT_METHOD,
        decisionId: facts.decisionId,
        policyVersion: facts.policyVersion,
        ruleIds: facts.ruleIds,
      },
    );
  }
}
