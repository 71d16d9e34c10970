/**
 * Authentication (RFC 6750 §2.1 bearer: API key or OAuth access token), failing closed.
 * Keys changed elsewhere are reloaded first (the request that notices waits), so a
 * revocation holds on the very next request. "Cannot know" (store unreachable) is a 503,
 * never a 401: a 401 would make an OAuth client discard a valid token.
 */
import { TLSSocket } from "node:tls";
import {
  type AuthnResult,
  authenticate as authenticateBearer,
  type BearerVerifiers,
} from "../../authn/authenticate.js";
import { missingCredential, storeUnavailable, unauthorized } from "../../core/errors.js";
import { type CallState, deny, type Outcome, type Step } from "../callState.js";
import type { StageDeps } from "../deps.js";

export function authenticate(deps: StageDeps): Step {
  const { keyring, log, anonymous } = deps;
  const bearers = bearerVerifiers(deps);
  /** RFC 9728 §5.1 / MCP authorization: where to find the metadata, and what to ask for. */
  const challenge = (call: CallState): string =>
    deps.oauthEnabled
      ? `resource_metadata="${deps.baseUrl()}/.well-known/oauth-protected-resource/mcp/${call.server}"${call.route ? `, scope="${call.route.scopes.join(" ")}"` : ""}`
      : "";

  const storeDown = (err: unknown): Outcome => {
    log.error({ err }, "cannot refresh keys from the store: failing closed");
    return deny(storeUnavailable("key store unavailable"), "key store unavailable: failing closed");
  };

  const judge = (call: CallState, result: AuthnResult): Outcome => {
    if (result.ok) {
      call.principal = result.principal;
      return undefined;
    }
    if (result.unavailable)
      return deny(
        storeUnavailable(result.reason),
        `${result.reason}: failing closed`,
        null,
        result.credentialId,
      );
    const error = result.missing
      ? missingCredential(challenge(call))
      : unauthorized(result.reason, challenge(call));
    return deny(error, result.reason, result.detail ?? null, result.credentialId);
  };

  /** The resource a token must be issued for (RFC 8707), built once per configured server. */
  const resources = new Map<string, string>();
  let base = "";
  const resourceOf = (server: string): string => {
    const now = deps.baseUrl();
    if (now !== base) {
      base = now;
      resources.clear();
    }
    let url = resources.get(server);
    if (url === undefined) {
      url = `${now}/mcp/${server}`;
      if (deps.routes.has(server)) resources.set(server, url);
    }
    return url;
  };

  const unexpected = (err: unknown): Outcome =>
    deny(err, "authentication failed unexpectedly: failing closed");

  const peerIdentity = deps.peerIdentity ?? null;
  /** The TLS client certificate's verdict (mutual TLS, SPIFFE X.509-SVID), null without one. */
  const peerOf = (call: CallState) => {
    if (peerIdentity === null) return null;
    const socket = call.res.req?.socket;
    return socket instanceof TLSSocket ? peerIdentity(socket) : null;
  };

  const verify = (call: CallState): Outcome | Promise<Outcome> => {
    let result: AuthnResult | Promise<AuthnResult>;
    try {
      result = authenticateBearer(
        call.headers,
        keyring,
        call.route?.anonymous ? anonymous : null,
        bearers,
        resourceOf(call.server),
        peerOf(call),
      );
    } catch (err) {
      return unexpected(err);
    }
    return result instanceof Promise ? result.then((r) => judge(call, r), unexpected) : judge(call, result);
  };

  return (call) => {
    let pending: Promise<void> | null | undefined;
    try {
      pending = keyring.refresh();
    } catch (err) {
      return storeDown(err);
    }
    return pending ? pending.then(() => verify(call), storeDown) : verify(call);
  };
}

/** The pipeline's bearer verifiers, read per request (the OAuth one is set once the base URL is known). */
export function bearerVerifiers(deps: Pick<StageDeps, "oauth" | "bearers">): BearerVerifiers {
  return {
    get oauth() {
      return deps.oauth.verifier;
    },
    get task() {
      return deps.bearers.task;
    },
    get jwtSvid() {
      return deps.bearers.jwtSvid;
    },
  };
}
