/**
 * Compiles policy files into an immutable, indexed decision function (./indexedPolicy.ts),
 * each rule's `match` into field checks (./ruleMatch.ts) and its `when` into CEL (./condition.ts).
 *
 * Decision semantics:
 * - deny overrides review, review overrides allow; when no rule matches the decision is
 *   deny with reason "no rule allows this" and no rule ids;
 * - `ruleIds` lists every matching rule of the winning effect, in file order;
 * - a rule matches when every `match` field holds (AND across fields, OR within a list) and
 *   its `when` condition, if any, is true;
 * - a `when` that fails to evaluate (a missing argument key, a null compared with a number,
 *   a non-bool value) counts as NOT matching for allow and review rules and as MATCHING for
 *   deny rules: an error never widens access (fail closed);
 * - review waits at most the smallest `review.timeoutSeconds` among the matching review
 *   rules (default 300 s).
 *
 * Name matching is asymmetric on purpose: deny and review rules compare `servers` and
 * `tools` on a normalised form of both pattern and name (NFKC, case-folded, invisible
 * characters removed, look-alike letters folded; see normalise.ts), so a variant spelling
 * of a denied tool is still denied; allow rules compare the exact name, so a variant never
 * gains an allow. A match field whose input is null (no tool name, no tier for a
 * server-wide method) does not hold. `methods` compare exactly.
 *
 * Cost: structured fields are Set lookups and precompiled regular expressions; rules are
 * indexed by method, then by server (cached per server), so a decision visits only the
 * candidate rules; CEL runs only for a candidate's `when`, over bindings built lazily once.
 */

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LineCounter, type Node, parseDocument, Scalar } from "yaml";
import { lineOf, nodeAt } from "../../config/yamlLocation.js";
import { type CompiledCondition, ConditionError, compileCondition } from "./condition.js";
import { closestName } from "./didYouMean.js";
import { type CompiledRule, DEFAULT_REVIEW_TIMEOUT_SECONDS, IndexedPolicy } from "./indexedPolicy.js";
import { compileMatch, remainingChecks } from "./ruleMatch.js";
import { allowedKeysAt, PolicyFile } from "./schema.js";
import { type CompiledPolicy, PolicyError } from "./types.js";

export { DEFAULT_REVIEW_TIMEOUT_SECONDS };

function pathText(path: readonly PropertyKey[]): string {
  let s = "";
  for (const seg of path) s += typeof seg === "number" ? `[${seg}]` : s ? `.${String(seg)}` : String(seg);
  return s;
}

/** Where an object sits, as the operator names it: "in rule 'x' match", "at the top level". */
function placeText(path: readonly PropertyKey[], raw: unknown): string {
  if (path.length === 0) return "at the top level";
  const [top, index, ...rest] = path;
  if (top !== "rules" || typeof index !== "number") return `in ${pathText(path)}`;
  const id = (raw as { rules?: Array<{ id?: unknown }> } | null)?.rules?.[index]?.id;
  const rule = typeof id === "string" ? `rule '${id}'` : `rules[${index}]`;
  return `in ${rest.length === 0 ? rule : `${rule} ${pathText(rest)}`}`;
}

/** `unknown key 'efect' in rule 'x': did you mean 'effect'? (allowed: …)` */
function unknownKeyText(key: string, path: readonly PropertyKey[], raw: unknown): string {
  const allowed = allowedKeysAt(path);
  const meant = closestName(key, allowed);
  return `unknown key '${key}' ${placeText(path, raw)}${meant ? `: did you mean '${meant}'?` : ""} (allowed: ${allowed.join(", ")})`;
}

/** A short content hash of the sources, in order: identifies the policy in audit records. */
export function policyVersion(files: ReadonlyArray<{ text: string }>): string {
  const h = createHash("sha256");
  for (const f of files) h.update(`${Buffer.byteLength(f.text)}:`).update(f.text);
  return h.digest("hex").slice(0, 12);
}

/**
 * Validates and compiles policy files. Throws the first PolicyError (file:line): bad YAML,
 * unknown keys, wrong values, a `when` that does not parse or check, duplicate rule ids.
 */
export function compilePolicy(files: ReadonlyArray<{ path: string; text: string }>): CompiledPolicy {
  const rules: CompiledRule[] = [];
  const seen = new Map<string, { file: string; line: number }>();
  for (const { path: file, text } of files) {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
    const yamlError = doc.errors[0];
    if (yamlError) {
      const line = lc.linePos(yamlError.pos[0]).line;
      throw new PolicyError(file, line, `invalid YAML: ${yamlError.message.split("\n")[0]}`);
    }
    const root = doc.contents as Node | null;
    if (root === null) throw new PolicyError(file, 1, "empty policy file: expected `rules:`");
    const raw: unknown = doc.toJS();
    const parsed = PolicyFile.safeParse(raw);
    if (!parsed.success) {
      // A misspelt key also makes the key it meant "missing": the unknown key is the cause.
      const issue = parsed.error.issues.find((i) => i.code === "unrecognized_keys") ?? parsed.error.issues[0];
      if (!issue) throw new PolicyError(file, 1, "invalid policy file");
      if (issue.code === "unrecognized_keys") {
        const key = issue.keys[0] ?? "";
        throw new PolicyError(
          file,
          lineOf(nodeAt(root, issue.path, key), lc),
          unknownKeyText(key, issue.path, raw),
        );
      }
      throw new PolicyError(
        file,
        lineOf(nodeAt(root, issue.path), lc),
        `${pathText(issue.path) || "policy"}: ${issue.message}`,
      );
    }
    parsed.data.rules.forEach((rule, i) => {
      const line = lineOf(nodeAt(root, ["rules", i]), lc);
      const first = seen.get(rule.id);
      if (first) {
        throw new PolicyError(
          file,
          lineOf(nodeAt(root, ["rules", i, "id"]), lc),
          `duplicate rule id "${rule.id}" (first defined at ${first.file}:${first.line})`,
        );
      }
      seen.set(rule.id, { file, line });
      let when: CompiledCondition | null = null;
      if (rule.when !== undefined) {
        const node = nodeAt(root, ["rules", i, "when"]);
        try {
          when = compileCondition(rule.when);
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          // Block literals keep the expression's lines; other scalar styles are reported where they start.
          const literal = node instanceof Scalar && node.type === Scalar.BLOCK_LITERAL;
          const at = lineOf(node, lc) + (literal ? err.exprLine : 0);
          throw new PolicyError(file, at, `when: ${err.message}`);
        }
      }
      const checks = compileMatch(rule.match ?? {}, rule.effect);
      const rest = remainingChecks(checks);
      const serverCheck = checks.find((c) => c.field === "servers");
      const methods = rule.match?.methods;
      rules.push({
        id: rule.id,
        file,
        line,
        effect: rule.effect,
        methods: methods && !methods.includes("*") ? new Set(methods) : null,
        serverTest: serverCheck ? (ev) => serverCheck.test(ev) : null,
        checks,
        rest,
        when,
        reviewTimeoutSeconds: rule.review?.timeoutSeconds ?? DEFAULT_REVIEW_TIMEOUT_SECONDS,
      });
    });
  }
  return new IndexedPolicy(
    policyVersion(files),
    files.map((f) => f.path),
    rules,
  );
}

/** The policy files named by `paths`: files as given, directories' `*.yaml`/`*.yml` sorted (not recursive). */
export function listPolicyFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      throw new PolicyError(p, 1, `cannot read policy path: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const inDir = readdirSync(p)
      .filter((n) => n.endsWith(".yaml") || n.endsWith(".yml"))
      .sort()
      .map((n) => join(p, n));
    if (inDir.length === 0) throw new PolicyError(p, 1, "no *.yaml or *.yml policy files in this directory");
    out.push(...inDir);
  }
  return out;
}

/** Reads policy files and directories (see listPolicyFiles) and compiles them. */
export function loadPolicyFiles(paths: readonly string[]): CompiledPolicy {
  const files = listPolicyFiles(paths).map((path) => {
    try {
      return { path, text: readFileSync(path, "utf8") };
    } catch (err) {
      throw new PolicyError(
        path,
        1,
        `cannot read policy file: ${(err as NodeJS.ErrnoException).code ?? err}`,
      );
    }
  });
  return compilePolicy(files);
}
