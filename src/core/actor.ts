/**
 * RFC 8693 §4.1 `act` (actor) claim: a delegation chain nests, the outermost `act` naming the
 * current actor and each inner `act` the one before it. The chain as a flat list of subjects,
 * outermost (current) first, is how policy (`actor.chain`) and the audit trail show it.
 */
import type { Actor } from "./principal.js";

/** Deeper chains are cut here: a token's nesting never sizes a list. */
export const MAX_ACTOR_CHAIN = 32;

/** Principals are cached with their credential, so each chain is flattened once. */
const CHAINS = new WeakMap<Actor, readonly string[]>();

/** The subjects of the `act` chain, outermost (current actor) first. */
export function actorChain(actor: Actor): readonly string[] {
  let chain = CHAINS.get(actor);
  if (chain === undefined) {
    const subs: string[] = [];
    for (let a: Actor | undefined = actor; a !== undefined && subs.length < MAX_ACTOR_CHAIN; a = a.act) {
      subs.push(a.sub);
    }
    chain = Object.freeze(subs);
    CHAINS.set(actor, chain);
  }
  return chain;
}
