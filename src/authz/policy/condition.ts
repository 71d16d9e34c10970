/**
 * A rule's `when` condition: a CEL expression (https://cel.dev, langdef) over PolicyInput,
 * evaluated with @bufbuild/cel. The variables are the input's fields
 * (./conditionVariables.ts); a condition is statically checked at compile time
 * (./conditionCheck.ts) and planned once for repeated evaluation.
 */

import { type CelInput, isCelError, parse, plan } from "@bufbuild/cel";
import { ConditionChecker, ConditionError, type ParsedExpr } from "./conditionCheck.js";
import { CONDITION_ENV, type ConditionBindings } from "./conditionVariables.js";

export { ConditionBindings, VARIABLES } from "./conditionVariables.js";
export { ConditionError };

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };

export interface CompiledCondition {
  readonly source: string;
  evaluate(bindings: ConditionBindings): ConditionResult;
}

/** Parses and statically checks a condition, then plans it once for repeated evaluation. */
export function compileCondition(source: string): CompiledCondition {
  let parsed: ParsedExpr;
  try {
    parsed = parse(source);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const m = /^<input>:(\d+):\d+: (.*)$/s.exec(message);
    throw new ConditionError(`CEL syntax: ${m ? m[2] : message}`, m ? Number(m[1]) : 1);
  }
  const positions = new Map<bigint, number>();
  for (const [id, offset] of Object.entries(parsed.sourceInfo?.positions ?? {})) {
    positions.set(BigInt(id), offset);
  }
  const type = new ConditionChecker(source, positions).check(parsed.expr);
  if (type.kind !== "bool" && type.kind !== "dyn") {
    throw new ConditionError(`a condition must yield a bool; this one yields ${type.kind}`, 1);
  }
  const run = plan(CONDITION_ENV, parsed);
  return {
    source,
    evaluate(bindings) {
      let value: unknown;
      try {
        value = run(bindings as unknown as Record<string, CelInput>);
      } catch (err) {
        return { ok: false, error: err instanceof Error ? err.message : String(err) };
      }
      if (typeof value === "boolean") return { ok: true, value };
      if (isCelError(value)) return { ok: false, error: value.message };
      return { ok: false, error: `condition yielded a non-bool value` };
    },
  };
}
