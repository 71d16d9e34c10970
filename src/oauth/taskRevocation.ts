/**
 * RFC 7009 — revoking a task token at the built-in authorization server's revocation
 * endpoint ends its task (src/tasks/): every replica refuses the token from the next request.
 *
 * oidc-provider does not know task tokens (the task service signs them) and answers any JWT
 * with `unsupported_token_type` (RFC 7009 §2.2.1) after it has authenticated the client. This
 * post-middleware takes exactly that answer, for a token whose signature the task service
 * verifies, and turns it into the end of the task and a 200 (RFC 7009 §2.2). Every other
 * revocation (refresh tokens, opaque tokens, other JWTs, failed client authentication) is
 * oidc-provider's answer, untouched.
 *
 * RFC 7009 §2.1: the token must have been issued to the client that revokes it. A task token
 * obtained by token exchange names its client (`client_id`); another client's request is
 * answered 200 (§2.2: an invalid token is no error) and leaves the task running. A task token
 * made without a client (`portcullis tasks start`, the console: `client_id` portcullis-cli)
 * may be revoked by any authenticated client that holds it: ending a task only takes away.
 */
import { bearerKind } from "../authn/bearerKind.js";
import { CLI_CLIENT_ID, type TaskEnder } from "../tasks/types.js";
import { clientActorId } from "./exchangeActor.js";
import type { OidcProvider } from "./oidcProvider.js";

interface RevocationContext {
  status: number;
  body: unknown;
  oidc?: { route?: string; client?: { clientId: string }; params?: Record<string, unknown> };
}

type Middleware = (ctx: RevocationContext, next: () => Promise<void>) => Promise<void>;

export interface TaskRevocationSettings {
  services: () => { ender: TaskEnder } | null;
  audit: (decision: "allow" | "deny", reason: string, detail: Record<string, unknown>) => void;
}

/** The `client_id` claim of a JWT whose signature was already verified (null when absent). */
function clientIdClaim(token: string): string | null {
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    const id = typeof claims === "object" && claims !== null ? Reflect.get(claims, "client_id") : undefined;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

export function handleTaskRevocation(provider: OidcProvider, settings: TaskRevocationSettings): void {
  const use: unknown = Reflect.get(provider, "use");
  if (typeof use !== "function") throw new Error("oidc-provider has no use()");
  const middleware: Middleware = async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== "revocation" || ctx.status !== 400) return;
    const body = ctx.body;
    if (typeof body !== "object" || body === null || Reflect.get(body, "error") !== "unsupported_token_type")
      return;
    const client = ctx.oidc.client;
    const token = ctx.oidc.params?.token;
    if (client === undefined || typeof token !== "string" || bearerKind(token) !== "task") return;
    const services = settings.services();
    if (services === null) return;
    const taskId = await services.ender.taskIdOf(token);
    if (taskId === null) return; // not a task token of ours: oidc-provider's answer stands
    const claimed = clientIdClaim(token);
    const holder = claimed === CLI_CLIENT_ID ? null : claimed;
    if (holder !== null && holder !== client.clientId) {
      settings.audit("deny", "task token revocation refused: the token was issued to another client", {
        task_id: taskId,
        client_id: client.clientId,
      });
    } else {
      await services.ender.end(taskId, "revoked", clientActorId(client.clientId));
    }
    ctx.status = 200;
    ctx.body = "";
  };
  Reflect.apply(use, provider, [middleware]);
}
