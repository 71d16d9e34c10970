/**
 * The subset of `oidc-provider`'s API that the authorization server uses, typed by hand
 * (the package ships no type definitions), and its loader. Keep it to what is called.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface OidcInteraction {
  uid: string;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

export interface OidcGrant {
  jti: string;
  accountId?: string;
  clientId?: string;
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

export interface OidcClient {
  clientId: string;
  clientName?: string;
  applicationType?: string;
  redirectUris: string[];
  grantTypeAllowed(type: string): boolean;
}

/** A stored interaction (oidc-provider's Interaction model; its id is the interaction uid). */
export interface OidcInteractionRecord {
  uid: string;
  prompt?: { name: string };
  /** The authorization request's parameters (client_id, redirect_uri, …). */
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  returnTo: string;
  /** Expiry, epoch seconds. */
  exp: number;
  save(ttlSeconds: number): Promise<string>;
}

/** An access token (or other token model) about to be issued. */
export interface OidcIssuedToken {
  save(): Promise<string>;
  /** Seconds until it expires. */
  readonly expiration: number;
  readonly tokenType: string;
}

/** The token endpoint's context as a registered grant handler sees it. */
export interface OidcTokenContext {
  oidc: {
    client?: OidcClient;
    params?: Record<string, unknown>;
    entity(name: string, value: unknown): void;
  };
  body: unknown;
}

export interface OidcProvider {
  issuer: string;
  /** Koa's request prototype for this provider (its getters may be redefined). */
  request: object;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string; expiresIn?: number }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
  Client: { find(id: string): Promise<OidcClient | undefined> };
  Interaction: { find(uid: string): Promise<OidcInteractionRecord | undefined> };
  AccessToken: new (init: Record<string, unknown>) => OidcIssuedToken;
  /** What getResourceServerInfo returns, as a model (audience, scope, format, TTL). */
  ResourceServer: new (
    identifier: string,
    info: Record<string, unknown>,
  ) => object;
  registerGrantType(
    name: string,
    handler: (ctx: OidcTokenContext) => Promise<void>,
    parameters?: string[],
    allowedDuplicateParameters?: string[],
  ): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

type OidcErrorClass = new (description?: string, detail?: string) => Error;

export interface OidcProviderModule {
  default: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;
  interactionPolicy: { base(): OidcInteractionPolicy };
  errors: {
    InvalidTarget: OidcErrorClass;
    InvalidClientMetadata: OidcErrorClass;
    InvalidRedirectUri: OidcErrorClass;
    InvalidRequest: OidcErrorClass;
    /** `new InvalidGrant(detail)`: the wire says "grant request is invalid", the detail stays server side. */
    InvalidGrant: new (
      detail?: string,
    ) => Error;
    InvalidScope: new (description: string, scope?: string, detail?: string) => Error;
    UnauthorizedClient: OidcErrorClass;
  };
}

/** The prompts (login, consent) and their checks; `check` may be replaced. */
export interface OidcInteractionPolicy {
  get(
    name: string,
  ):
    | { checks: { get(reason: string): { reason: string; check(ctx: OidcContext): boolean } | undefined } }
    | undefined;
}

/** The context oidc-provider passes to configuration callbacks (Koa's, with `oidc`). */
export interface OidcContext {
  oidc: {
    route?: string;
    client?: OidcClient;
    session?: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    params?: Record<string, unknown>;
  };
  type: string;
  body: unknown;
  status: number;
  set(field: string, value: string): void;
}

export async function loadOidcProvider(): Promise<OidcProviderModule> {
  // A variable specifier: the package has no type definitions, so it is typed by hand above.
  const specifier: string = "oidc-provider";
  return (await import(specifier)) as OidcProviderModule;
}
