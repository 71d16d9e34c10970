/**
 * API key string format: `pcl_<environment>_<id>_<secret><checksum>`.
 *
 * - `pcl_` names the product so secret scanners recognise a leaked key;
 * - the environment is readable, so a key pasted into the wrong gateway is refused
 *   before any lookup;
 * - the 12-character id is the lookup key (one hash and one map lookup per request);
 * - 32 base62 characters of secret (~190 bits);
 * - a 6-character base62 CRC-32 of everything before it, so scanners can tell a real
 *   key from a random look-alike offline (as GitHub's token format does).
 */
import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const KEY_ID_LENGTH = 12;
const SECRET_LENGTH = 32;
const CHECKSUM_LENGTH = 6;

/** Matches a complete key; for scanners and docs. */
export const KEY_PATTERN = /^pcl_([a-z][a-z0-9]{0,15})_([0-9A-Za-z]{12})_([0-9A-Za-z]{38})$/;

/** Uniform random base62 string (rejection sampling, no modulo bias). */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export interface MintedKey {
  id: string;
  key: string;
}

export function mintKey(environment: string): MintedKey {
  const id = randomBase62(KEY_ID_LENGTH);
  const body = `pcl_${environment}_${id}_${randomBase62(SECRET_LENGTH)}`;
  return { id, key: body + checksum(body) };
}

export type ParsedKey =
  | { ok: true; environment: string; id: string }
  | { ok: false; reason: "malformed" | "bad_checksum" };

/** Checks shape and checksum only; says nothing about whether the key exists. */
export function parseKey(key: string): ParsedKey {
  const m = KEY_PATTERN.exec(key);
  if (!m) return { ok: false, reason: "malformed" };
  const body = key.slice(0, key.length - CHECKSUM_LENGTH);
  if (checksum(body) !== key.slice(-CHECKSUM_LENGTH)) return { ok: false, reason: "bad_checksum" };
  return { ok: true, environment: m[1] as string, id: m[2] as string };
}
