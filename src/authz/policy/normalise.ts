/**
 * The form in which deny and review rules compare tool and server names.
 *
 * Upstream servers resolve tool names in ways the gateway cannot see: some compare
 * case-insensitively, some apply Unicode normalisation, some strip invisible characters.
 * A deny rule written as `delete_*` must therefore also catch `Delete_repo`,
 * `ｄｅｌｅｔｅ_repo` (fullwidth, a compatibility form), `del\u200Bete_repo` (a zero-width
 * space) and `dеlete_repo` (Cyrillic `е`). Allow rules keep comparing the exact name, so a
 * look-alike never gains an allow it was not written for: the asymmetry errs towards refusal.
 *
 * Steps (UAX #15 NFKC, then a full case fold, then UTS #39-style look-alike folding):
 * 1. NFKC: compatibility forms (fullwidth, mathematical alphanumerics, ligatures, …).
 * 2. Remove invisible characters: format characters (Cf: U+200B, U+2060, U+FEFF, U+00AD, …)
 *    and every other Default_Ignorable_Code_Point (variation selectors, Hangul fillers, …).
 * 3. Case fold (upper then lower, so `ß` and `ẞ` both fold to `ss`), then NFKC again.
 * 4. Fold Cyrillic and Greek letters that render like Latin ones (a hand-written subset of
 *    the confusables that matter for identifiers).
 */

const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;

/** Lower-case Cyrillic/Greek (and a few Latin) letters that look like a Latin letter. */
const LOOKALIKES: Readonly<Record<string, string>> = {
  // Cyrillic
  "\u0430": "a", // а
  "\u0431": "b", // б (looks like 6/b)
  "\u0432": "b", // в (upper В looks like B)
  "\u0435": "e", // е
  "\u0451": "e", // ё
  "\u043a": "k", // к
  "\u043c": "m", // м
  "\u043d": "h", // н (upper Н looks like H)
  "\u043e": "o", // о
  "\u0440": "p", // р
  "\u0441": "c", // с
  "\u0442": "t", // т
  "\u0443": "y", // у
  "\u0445": "x", // х
  "\u0455": "s", // ѕ
  "\u0456": "i", // і
  "\u0457": "i", // ї
  "\u0458": "j", // ј
  "\u04bb": "h", // һ
  "\u04cf": "l", // ӏ
  "\u0501": "d", // ԁ
  "\u051b": "q", // ԛ
  "\u051d": "w", // ԝ
  "\u04af": "y", // ү
  // Greek
  "\u03b1": "a", // α
  "\u03b2": "b", // β
  "\u03b5": "e", // ε
  "\u03b7": "h", // η (upper Η looks like H)
  "\u03b9": "i", // ι
  "\u03ba": "k", // κ
  "\u03bc": "m", // μ (upper Μ looks like M)
  "\u03bd": "v", // ν
  "\u03bf": "o", // ο
  "\u03c1": "p", // ρ
  "\u03c4": "t", // τ
  "\u03c5": "u", // υ
  "\u03c7": "x", // χ
  "\u03b6": "z", // ζ (upper Ζ looks like Z)
  // Latin letters outside ASCII that read as ASCII
  "\u0131": "i", // ı dotless i
  "\u0261": "g", // ɡ script g
  "\u0251": "a", // ɑ
};
const LOOKALIKE = new RegExp(`[${Object.keys(LOOKALIKES).join("")}]`, "gu");

/** True when every UTF-16 unit is ASCII: NFKC and the look-alike folding are then no-ops. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The normalised form of a name (or of a glob pattern: `*` is left intact). */
export function normaliseName(name: string): string {
  if (isAscii(name)) return name.toLowerCase();
  const folded = name.normalize("NFKC").replace(INVISIBLE, "").toUpperCase().toLowerCase();
  return folded
    .normalize("NFKC")
    .replace(INVISIBLE, "")
    .replace(LOOKALIKE, (c) => LOOKALIKES[c] ?? c);
}
