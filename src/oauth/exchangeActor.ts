/**
 * RFC 8693 §4.1 — the `act` (actor) claim of an exchanged token. The actor is who will act
 * for the subject: the principal of a verified `actor_token` (RFC 8693 §2.1), or else the
 * authenticated OAuth client that made the exchange (`client:<client_id>`). Nothing a client
 * writes in the request names an actor directly, so `act` cannot be forged.
 *
 * Delegation chains (§4.1: "a chain of delegation can be expressed by nesting one act claim
 * within another"): when the subject token already carries `act` (a task token re-delegated),
 * the new actor becomes the outermost and the old chain is nested under it. The chain's depth
 * is bounded.
 */
import type { Actor } from "../core/principal.js";

export const MAX_DELEGATION_DEPTH = 5;

/** How an OAuth client that made an exchange is named as an actor. */
export function clientActorId(clientId: string): string {
  return `client:${clientId}`;
}

function depth(actor: Actor | undefined): number {
  let n = 0;
  for (let a = actor; a !== undefined; a = a.act) n++;
  return n;
}

/** The new `act`: the current actor outermost, the subject's own chain nested below it; null when too deep. */
export function delegatedActor(current: string, subjectChain: Actor | undefined): Actor | null {
  if (depth(subjectChain) + 1 > MAX_DELEGATION_DEPTH) return null;
  return subjectChain === undefined ? { sub: current } : { sub: current, act: subjectChain };
}

/** `a ← b ← c`: the chain as one line, outermost (current) actor first. */
export function actorChain(actor: Actor | null | undefined): string[] {
  const out: string[] = [];
  for (let a = actor ?? undefined; a !== undefined; a = a.act) out.push(a.sub);
  return out;
}
