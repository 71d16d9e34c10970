/**
 * Decision tables and explain requests as policy inputs (`portcullis policy test|explain`,
 * the console's explain form): cases files read as YAML and validated with file:line errors.
 * The format is ./caseFormat.ts, the policy input built from a case ./caseInput.ts, the
 * explain flags ./explainRequest.ts.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, relative } from "node:path";
import { LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { lineOf, nodeAt } from "../../config/yamlLocation.js";
import { ALLOWED_KEYS, type Case, CasesFile, PolicyInputError } from "./caseFormat.js";
import { closestName } from "./didYouMean.js";

export { PolicyInputError, TIERS } from "./caseFormat.js";
export { buildInput, type PinnedTools, type TierSource, type ToolRiskChoice } from "./caseInput.js";
export { type ExplainOpts, explainCase, explainInput } from "./explainRequest.js";

/** A path as the operator reads it: relative to the working directory when under it. */
export function shown(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

export function caseLabel(index: number, name: string | undefined): string {
  return name === undefined ? `case #${index + 1}` : `case #${index + 1} "${name}"`;
}

export function issueText(issue: z.core.$ZodIssue, raw: unknown): string {
  const [top, index, ...rest] = issue.path;
  let where = "";
  let within = issue.path;
  if (top === "cases" && typeof index === "number") {
    const rawCase = (raw as { cases?: unknown[] }).cases?.[index] as { name?: unknown } | undefined;
    where = `${caseLabel(index, typeof rawCase?.name === "string" ? rawCase.name : undefined)}: `;
    within = rest;
  }
  const field = within.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const section = within.length === 0 ? (where ? "case" : "file") : String(within[within.length - 1]);
    const allowed = ALLOWED_KEYS[section];
    const at = field ? ` in ${field}` : "";
    const meant = allowed ? closestName(String(issue.keys[0]), allowed) : undefined;
    return `${where}unknown key "${issue.keys[0]}"${at}${meant ? `: did you mean "${meant}"?` : ""}${allowed ? ` (allowed: ${allowed.join(", ")})` : ""}`;
  }
  return `${where}${field || "cases file"}: ${issue.message}`;
}

export function readCases(file: string): Case[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PolicyInputError(
      `<cases> ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = lc.linePos(yamlError.pos[0]).line;
    throw new PolicyInputError(`${shown(file)}:${line}: invalid YAML: ${yamlError.message.split("\n")[0]}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = CasesFile.safeParse(raw);
  if (!parsed.success) {
    // A misspelt key also makes the key it meant "missing": the unknown key is the cause.
    const issue = (parsed.error.issues.find((i) => i.code === "unrecognized_keys") ??
      parsed.error.issues[0]) as z.core.$ZodIssue;
    const key = issue.code === "unrecognized_keys" ? issue.keys[0] : undefined;
    const line = lineOf(nodeAt(doc.contents as Node | null, issue.path, key), lc);
    throw new PolicyInputError(`${shown(file)}:${line}: ${issueText(issue, raw)}`);
  }
  return parsed.data.cases;
}
