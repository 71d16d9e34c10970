/**
 * RFC 8693 OAuth 2.0 Token Exchange at the built-in authorization server's token endpoint
 * (`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, §2.1), registered with
 * oidc-provider as a custom grant. It trades a subject token (a person's or machine client's
 * access token, a task token, an API key or a JWT-SVID: ./exchangeTokens.ts) for a task token
 * (src/tasks/) bound to one MCP endpoint (RFC 8707 `resource`), its details carried as RFC 9396
 * `authorization_details` of type `urn:portcullis:task` (./taskAuthorizationDetails.ts), its
 * actor in `act` (./exchangeActor.ts). The task never holds more than the subject: the
 * requested server, tools, OAuth scopes and lifetime are checked against the subject here,
 * then the task service intersects them with the policy (`TaskMinter.mint`, which records the
 * decision). Every refusal before that is audited here; the client gets the RFC 8693 §2.2.2
 * code with a generic description.
 *
 * Which clients may use it: a client whose registered `grant_types` include the grant (RFC 7591
 * registration or a Client ID Metadata Document), public or confidential, and every machine
 * client (./machineClients.ts). The console's client may not.
 *
 * RFC 7009 revocation of a task token (./taskRevocation.ts) is wired here too.
 */
import { eventRecord, newEventDecisionId } from "../audit/records.js";
import type { AccessTokenVerifier } from "../authn/oauthToken.js";
import { STORE_RETRY_AFTER_SECONDS } from "../core/errors.js";
import type { Actor } from "../core/principal.js";
import { allowsServer, allowsTool, restrictsTools } from "../core/scope.js";
import type { AuditRecord } from "../store/types.js";
import type { MintRefusal, TaskEnder, TaskMinter } from "../tasks/types.js";
import type { ResourceAccess } from "./consentSummary.js";
import { clientActorId, delegatedActor } from "./exchangeActor.js";
import { checkOAuthScopes, ownerWithin } from "./exchangeBounds.js";
import {
  type ExchangeTokenVerifiers,
  type ExchangeVerifiers,
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPE_ACCESS_TOKEN,
  verifyExchangeToken,
} from "./exchangeTokens.js";
import type { OidcProvider } from "./oidcProvider.js";
import { grantedTaskDetails, parseTaskDetails, TASK_DETAILS_TYPE } from "./taskAuthorizationDetails.js";
import { handleTaskRevocation } from "./taskRevocation.js";

/** The request parameters of the grant (RFC 8693 §2.1, RFC 8707 §2.2, RFC 9396 §6). */
const PARAMETERS = [
  "subject_token",
  "subject_token_type",
  "actor_token",
  "actor_token_type",
  "requested_token_type",
  "audience",
  "resource",
  "scope",
  "authorization_details",
];

/** What the task service and the gateway's verifiers lend the authorization server (gateway.ts). */
export interface TaskExchangeServices extends ExchangeVerifiers {
  minter: TaskMinter;
  ender: TaskEnder;
}

export interface ExchangeResource {
  url: string;
  /** The gateway server the endpoint fronts (`<issuer>/mcp/<server>`). */
  server: string;
  access: ResourceAccess;
}

/** The MCP endpoints as the exchange sees them: each endpoint's server and what its scopes unlock. */
export function exchangeResources(
  resources: ReadonlyArray<{ url: string; scopes: string[]; access?: ResourceAccess }>,
): ExchangeResource[] {
  return resources.flatMap((r) => {
    const server = /\/mcp\/([^/]+)$/.exec(new URL(r.url).pathname)?.[1];
    return server === undefined
      ? []
      : [{ url: r.url, server, access: r.access ?? { scopes: [], tools: {} } }];
  });
}

export interface TokenExchangeSettings {
  issuer: string;
  environment: string;
  resources: readonly ExchangeResource[];
  /** This authorization server's own access tokens. */
  oauthTokens: AccessTokenVerifier;
  /** The gateway's chained audit writer. */
  audit: (record: AuditRecord) => void;
  /** Null without a task service: the grant is then refused as unsupported. */
  services: () => TaskExchangeServices | null;
}

/**
 * An OAuth error response for the token endpoint, as oidc-provider renders its own (status,
 * `error`, `error_description`). `audited` marks a refusal already on the audit trail.
 */
export class ExchangeError extends Error {
  readonly expose = true;
  readonly error: string;
  readonly error_description: string;
  readonly statusCode: number;
  readonly status: number;
  constructor(
    code: string,
    description: string,
    readonly audited: boolean,
    statusCode = 400,
  ) {
    super(code);
    this.error = code;
    this.error_description = description;
    this.statusCode = statusCode;
    this.status = statusCode;
  }
}

/** What the client is told when the task service refuses the task (RFC 6749 §5.2 codes). */
const MINT_REFUSED: Record<MintRefusal["error"], string> = {
  invalid_request: "the task request is not acceptable",
  invalid_scope: "a requested grant is beyond what the subject may have",
  invalid_target: "the task names a resource the subject cannot reach",
  access_denied: "the policy refuses this task",
};

interface ExchangeContext {
  oidc: { params?: Record<string, unknown>; client?: { clientId: string } };
  body: unknown;
  set(field: string, value: string): void;
}

interface GrantRegistry {
  registerGrantType(
    name: string,
    handler: (ctx: ExchangeContext) => Promise<void>,
    params: Set<string>,
  ): void;
}

function grantRegistry(provider: OidcProvider): GrantRegistry {
  const register: unknown = Reflect.get(provider, "registerGrantType");
  if (typeof register !== "function") throw new Error("oidc-provider has no registerGrantType");
  return { registerGrantType: (...args) => Reflect.apply(register, provider, args) };
}

const now = () => Date.now();

/** Registers the grant and the task-token revocation with one provider build. */
export function registerTokenExchange(provider: OidcProvider, settings: TokenExchangeSettings): void {
  const { environment } = settings;
  const byUrl = new Map(settings.resources.map((r) => [r.url, r]));
  const resourceUrls = new Set(byUrl.keys());
  const serverOf = (url: string | null) => (url === null ? null : (byUrl.get(url)?.server ?? null));

  const audit = (
    decision: "allow" | "deny",
    reason: string,
    detail: Record<string, unknown>,
    subject: { principal?: string | null; credentialId?: string | null; server?: string | null },
  ) =>
    settings.audit(
      eventRecord(environment, decision, reason, detail, {
        principal: subject.principal ?? null,
        method: "oauth_token_exchange",
        credentialId: subject.credentialId ?? null,
        server: subject.server ?? null,
        decisionId: newEventDecisionId(),
      }),
    );

  async function exchange(ctx: ExchangeContext): Promise<void> {
    const params = ctx.oidc.params ?? {};
    const clientId = ctx.oidc.client?.clientId ?? "";
    const requested = typeof params.resource === "string" ? params.resource : null;
    let who: { principal: string | null; credentialId: string | null } = {
      principal: null,
      credentialId: null,
    };
    /** Refuses with `code` (generic `description` to the client), recording `reason`. */
    function refuse(code: string, description: string, reason: string, status = 400): never {
      audit(
        "deny",
        `token exchange refused: ${reason}`,
        { client_id: clientId, error: code, resource: requested },
        {
          ...who,
          server: serverOf(requested),
        },
      );
      // RFC 9110 §10.2.3: a 503 (store unreachable) says when to retry, as the AS does elsewhere.
      if (status === 503) ctx.set("retry-after", String(STORE_RETRY_AFTER_SECONDS));
      throw new ExchangeError(code, description, true, status);
    }

    const services = settings.services();
    if (services === null)
      refuse("unsupported_grant_type", "token exchange is not available", "no task service");
    const tasks = services;
    const verifiers: ExchangeTokenVerifiers = {
      oauth: settings.oauthTokens,
      apiKeys: tasks.apiKeys,
      taskTokens: tasks.taskTokens,
      jwtSvid: tasks.jwtSvid,
    };

    // RFC 8693 §2.1 parameters.
    if (typeof params.subject_token !== "string" || typeof params.subject_token_type !== "string")
      refuse("invalid_request", "subject_token and subject_token_type are required", "no subject token");
    if (params.requested_token_type !== undefined && params.requested_token_type !== TOKEN_TYPE_ACCESS_TOKEN)
      refuse("invalid_request", "only access tokens can be requested", "unsupported requested_token_type");
    if ((params.actor_token === undefined) !== (params.actor_token_type === undefined))
      refuse(
        "invalid_request",
        "actor_token and actor_token_type go together",
        "actor token without its type",
      );
    // RFC 8707: exactly one of this gateway's MCP endpoints (`audience`, if sent, names the same).
    if (requested === null) refuse("invalid_target", "the resource parameter is required", "no resource");
    const target = byUrl.get(requested);
    if (target === undefined) refuse("invalid_target", "unknown resource", `unknown resource ${requested}`);
    if (params.audience !== undefined && params.audience !== target.url)
      refuse("invalid_target", "audience must name the resource", "audience differs from resource");
    // RFC 9396: the task's details.
    const parsed = parseTaskDetails(params.authorization_details, target.url);
    if (!parsed.ok)
      refuse(
        "invalid_authorization_details",
        "authorization_details is not a valid task request",
        parsed.reason,
      );
    const { details } = parsed;

    // RFC 8693 §2.2.2: an invalid or unacceptable subject or actor token is invalid_request.
    const subject = await verifyExchangeToken(
      params.subject_token,
      params.subject_token_type,
      verifiers,
      resourceUrls,
      target.url,
    );
    if (!subject.ok) {
      who = { principal: null, credentialId: subject.credentialId };
      if (subject.unavailable)
        refuse("temporarily_unavailable", "retry later", `subject token: ${subject.reason}`, 503);
      refuse("invalid_request", "the subject token is not acceptable", `subject token: ${subject.reason}`);
    }
    const owner = ownerWithin(subject.principal, serverOf(subject.audience));
    who = { principal: owner.id, credentialId: owner.credentialId };

    let actorId = clientActorId(clientId);
    if (params.actor_token !== undefined) {
      const actor = await verifyExchangeToken(
        String(params.actor_token),
        params.actor_token_type,
        verifiers,
        resourceUrls,
        target.url,
      );
      if (!actor.ok) {
        if (actor.unavailable)
          refuse("temporarily_unavailable", "retry later", `actor token: ${actor.reason}`, 503);
        refuse("invalid_request", "the actor token is not acceptable", `actor token: ${actor.reason}`);
      }
      actorId = actor.principal.id;
    }
    const act: Actor | null = delegatedActor(actorId, owner.actor);
    if (act === null)
      refuse("invalid_request", "the delegation chain is too long", "delegation chain too long");

    // Never wider than the subject: its server, its tools, its OAuth scopes, its life.
    const server = target.server;
    if (!allowsServer(owner.scopes, server))
      refuse(
        "invalid_target",
        "the subject token does not reach this resource",
        `subject does not reach ${server}`,
      );
    if (details.tools === null && restrictsTools(owner.scopes, server))
      refuse(
        "invalid_scope",
        "name the tools the task needs",
        `subject reaches only some tools of ${server}; the task asked for all`,
      );
    for (const tool of details.tools ?? []) {
      if (!allowsTool(owner.scopes, server, tool))
        refuse(
          "invalid_scope",
          "a requested tool is not available to the subject",
          `subject may not call ${server}:${tool}`,
        );
    }
    const requestedScope =
      typeof params.scope === "string" && params.scope.trim() !== ""
        ? params.scope.trim().split(/\s+/)
        : null;
    const oauthScopes = checkOAuthScopes(owner, requestedScope, target.access, details.tools);
    if (!oauthScopes.ok) refuse("invalid_scope", "the requested scope is not available", oauthScopes.reason);
    const grantedScope = oauthScopes.scope;
    if (
      details.lifetimeSeconds !== null &&
      owner.expiresAt !== null &&
      now() + details.lifetimeSeconds * 1000 > owner.expiresAt.getTime()
    )
      refuse(
        "invalid_request",
        "the requested lifetime exceeds the subject token's",
        "lifetime beyond the subject's expiry",
      );

    const result = await tasks.minter.mint(
      owner,
      {
        purpose: details.purpose,
        grants: details.tools === null ? [server] : details.tools.map((t) => `${server}:${t}`),
        ...(details.lifetimeSeconds === null ? {} : { ttlSeconds: details.lifetimeSeconds }),
        budget: details.budget,
        actor: act,
        clientId,
        ownerExpiresAt: owner.expiresAt,
        ownerGrantId: subject.grantId,
      },
      "token_exchange",
    );
    // The task service recorded its decision (and its precise reason) either way.
    if (!result.ok) throw new ExchangeError(result.error, MINT_REFUSED[result.error], true);
    const { task, token } = result;
    const prefix = `${server}:`;
    const tools = task.grants.includes(server)
      ? null
      : task.grants.filter((g) => g.startsWith(prefix)).map((g) => g.slice(prefix.length));
    ctx.body = {
      access_token: token,
      issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      token_type: "Bearer",
      expires_in: Math.max(0, Math.floor((task.expiresAt.getTime() - now()) / 1000)),
      ...(grantedScope === null ? {} : { scope: grantedScope.join(" ") }),
      authorization_details: grantedTaskDetails(target.url, task.purpose, tools, task.expiresAt, task.budget),
    };
  }

  grantRegistry(provider).registerGrantType(TOKEN_EXCHANGE_GRANT, exchange, new Set(PARAMETERS));
  advertiseTaskDetailsType(provider);

  // Refusals before the grant handler ran (client authentication, grant type not allowed for
  // the client, malformed parameters) are recorded here; the handler records its own.
  provider.on("grant.error", (...args: unknown[]) => {
    const ctx = args[0] as ExchangeContext | undefined;
    const err = args[1];
    if (ctx?.oidc?.params?.grant_type !== TOKEN_EXCHANGE_GRANT) return;
    if (err instanceof ExchangeError && err.audited) return;
    const e = (err ?? {}) as { error?: unknown; error_description?: unknown; error_detail?: unknown };
    const claimed = ctx.oidc.client?.clientId ?? ctx.oidc.params.client_id;
    const clientId = typeof claimed === "string" ? claimed.slice(0, 200) : null;
    audit(
      "deny",
      `token exchange refused: ${String(e.error ?? "error")}: ${String(e.error_detail ?? e.error_description ?? "")}`,
      { client_id: clientId, error: e.error ?? null },
      { principal: null, credentialId: null, server: null },
    );
  });

  handleTaskRevocation(provider, {
    services: () => settings.services(),
    audit: (decision, reason, detail) => audit(decision, reason, detail, {}),
  });
}

interface DiscoveryContext {
  oidc?: { route?: string };
  body: unknown;
}

/**
 * RFC 9396 §10: the metadata names the `authorization_details` types the server accepts
 * (oidc-provider adds the member only for its own RAR feature, which is not used here).
 */
function advertiseTaskDetailsType(provider: OidcProvider): void {
  const use: unknown = Reflect.get(provider, "use");
  if (typeof use !== "function") throw new Error("oidc-provider has no use()");
  const middleware = async (ctx: DiscoveryContext, next: () => Promise<void>) => {
    await next();
    if (ctx.oidc?.route !== "discovery" || typeof ctx.body !== "object" || ctx.body === null) return;
    if (Reflect.get(ctx.body, "authorization_details_types_supported") === undefined)
      Reflect.set(ctx.body, "authorization_details_types_supported", [TASK_DETAILS_TYPE]);
  };
  Reflect.apply(use, provider, [middleware]);
}
