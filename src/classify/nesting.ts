/**
 * How deep a JSON text nests (RFC 8259 §9: "An implementation may set limits on the maximum
 * depth of nesting"). A message nested deeper than {@link MAX_MESSAGE_NESTING} is refused at
 * classification, so everything after it — policy, approval bindings, the audit trail's
 * canonical JSON (src/core/canonicalJson.ts, {@link MAX_DEPTH} levels) — can read every message it
 * is given. Counted on the text, which has already parsed, without recursion or allocation.
 */
import { MAX_DEPTH } from "../core/canonicalJson.js";

/** Arrays and objects open at once, the message itself included (its arguments sit two levels in). */
export const MAX_MESSAGE_NESTING = MAX_DEPTH;

/** True when valid JSON `text` has more than `max` arrays and objects open at some point. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the escaped character cannot end the string
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
