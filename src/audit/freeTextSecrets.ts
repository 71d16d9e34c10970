/**
 * Secrets in free text that secretlint's recommended rules do not report, found by pattern
 * in every scanned string of a call's arguments (src/audit/redact.ts):
 *
 * - credentials in an HTTP `Authorization` value: `Bearer` and `Basic` followed by a token68
 *   (RFC 6750 §2.1, RFC 7617 §2), and JSON Web Tokens anywhere (RFC 7515 §7.1 compact
 *   serialisation; every JOSE header is a JSON object, so its base64url starts `eyJ`);
 * - a value assigned to a secret-looking name in prose, logs, config or shell
 *   (`password: X`, `PASSWORD=X`, `"api_key": "X"`, `--password X`);
 * - a password glued to its flag, as MySQL and sshpass take it (`-pPASSWORD`);
 * - Portcullis API keys (src/authn/keyFormat.ts).
 *
 * AWS access key ids are reported by secretlint's own AWS rule (`enableIDScanRule`).
 * Only the secret part of a match is masked, so the rest of the command stays readable.
 */

/** A pattern (flags `gd`) and the groups that may hold the secret, first match wins (0: the whole match). */
interface SecretPattern {
  pattern: RegExp;
  groups: readonly number[];
}

/** Names whose assigned value is a secret. */
const NAME =
  "(?:pass(?:word|phrase|wd)?|pwd|secret|client[-_]?secret|token|access[-_]?token|refresh[-_]?token|api[-_]?key|access[-_]?key|private[-_]?key)";

/** A value: double-quoted, single-quoted (spaces and all), or bare up to a space or separator. */
const VALUE = String.raw`(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;]+))`;

const PATTERNS: readonly SecretPattern[] = [
  { pattern: /\b(?:Bearer|Basic)\s+([A-Za-z0-9._~+/-]{8,}=*)/dgi, groups: [1] },
  { pattern: /\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){2,4}/dg, groups: [0] },
  // After anything but a letter or digit: `DB_PASSWORD=…` and `"api_key": …`, not `max_tokens=…`.
  {
    pattern: new RegExp(String.raw`(?<![A-Za-z0-9])${NAME}["']?\s*(?::|=>|=)\s*${VALUE}`, "dgi"),
    groups: [1, 2, 3],
  },
  { pattern: new RegExp(String.raw`(?:^|\s)--${NAME}(?:=|\s+)${VALUE}`, "dgi"), groups: [1, 2, 3] },
  // Not a port or a port mapping (`-p8080`, `-p8080:80`), nor short option clusters (`-pv`).
  { pattern: /(?:^|\s)-p(?![\d:]+(?:\s|$))([^\s-]\S{2,})/dg, groups: [1] },
  { pattern: /\bpcl_[a-z][a-z0-9]{0,15}_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b/dg, groups: [0] },
];

/** The [start, end) ranges of the secrets these patterns find in `text`. */
export function freeTextSecrets(text: string): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  for (const { pattern, groups } of PATTERNS) {
    for (const m of text.matchAll(pattern)) {
      const range = groups.map((g) => m.indices?.[g]).find((r) => r !== undefined);
      if (range !== undefined && range[1] > range[0]) found.push([range[0], range[1]]);
    }
  }
  return found;
}
