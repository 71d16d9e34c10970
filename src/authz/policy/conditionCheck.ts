/**
 * Static checks of a policy condition (./condition.ts) before it is ever evaluated:
 * @bufbuild/cel 0.6 exports no type checker, so this checks what can be known statically:
 * unknown variables and fields, unknown functions, operand kinds of operators and
 * comparisons, and that the condition yields a bool (CEL langdef, "Type Checking").
 */
import type { parse } from "@bufbuild/cel";
import { CONDITION_ENV, type Kind, ROOTS, type StaticType, VARIABLES } from "./conditionVariables.js";

/** Thrown by compileCondition; `exprLine` is 1-based within the expression text. */
export class ConditionError extends Error {
  constructor(
    message: string,
    readonly exprLine: number,
  ) {
    super(message);
  }
}

export type ParsedExpr = ReturnType<typeof parse>;
type Expr = ParsedExpr["expr"];

/** Functions the planner implements itself rather than through the function resolver. */
const PLANNER_FUNCTIONS = new Set(["_&&_", "_||_", "_?_:_", "@not_strictly_false", "_[_]", "_?._", "_[?_]"]);
const TYPE_NAMES = new Set([
  "bool",
  "int",
  "uint",
  "double",
  "string",
  "bytes",
  "list",
  "map",
  "null_type",
  "type",
  "dyn",
]);
const NUMERIC = new Set<Kind>(["int", "uint", "double"]);
const ORDERED = new Set<Kind>(["int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"]);
const DYN: StaticType = { kind: "dyn" };
/** The kind of each CEL literal. */
const CONSTANT_KINDS: Readonly<Record<string, Kind>> = {
  boolValue: "bool",
  int64Value: "int",
  uint64Value: "uint",
  doubleValue: "double",
  stringValue: "string",
  bytesValue: "bytes",
  nullValue: "null",
};
const BOOL: StaticType = { kind: "bool" };

function comparable(a: StaticType, b: StaticType): boolean {
  if (a.kind === "dyn" || b.kind === "dyn") return true;
  if (a.kind === b.kind) return true;
  if (NUMERIC.has(a.kind) && NUMERIC.has(b.kind)) return true;
  return (a.kind === "null" && b.nullable === true) || (b.kind === "null" && a.nullable === true);
}
/** Static checks over the parsed expression; see the module comment. */
export class ConditionChecker {
  private readonly scopes: string[] = [];
  constructor(
    private readonly source: string,
    private readonly positions: ReadonlyMap<bigint, number>,
  ) {}

  private fail(e: Expr, message: string): never {
    const offset = this.positions.get(e.id) ?? 0;
    const line = this.source.slice(0, offset).split("\n").length;
    throw new ConditionError(message, line);
  }

  /** `principal.expiresInSeconds` → that qualified name, when the chain starts at a root. */
  private qualified(e: Expr): string[] | null {
    if (e.exprKind.case === "identExpr") return [e.exprKind.value.name];
    if (e.exprKind.case === "selectExpr" && !e.exprKind.value.testOnly && e.exprKind.value.operand) {
      const head = this.qualified(e.exprKind.value.operand);
      return head ? [...head, e.exprKind.value.field] : null;
    }
    return null;
  }

  check(e: Expr): StaticType {
    const k = e.exprKind;
    switch (k.case) {
      case "constExpr": {
        const kind = k.value.constantKind.case;
        return kind === undefined ? DYN : { kind: CONSTANT_KINDS[kind] ?? "dyn" };
      }
      case "identExpr": {
        const name = k.value.name;
        if (this.scopes.includes(name)) return DYN;
        if (ROOTS.has(name)) {
          this.fail(e, `\`${name}\` is not a value; use one of its fields, e.g. ${exampleField(name)}`);
        }
        if (TYPE_NAMES.has(name)) return { kind: "type" };
        this.fail(e, `unknown variable \`${name}\` (known: ${[...ROOTS].join(", ")})`);
        break;
      }
      case "selectExpr": {
        const operand = k.value.operand;
        if (!operand) this.fail(e, "malformed field selection");
        const q = this.qualified(operand);
        if (q && q.length >= 1 && ROOTS.has(q[0] as string) && !this.scopes.includes(q[0] as string)) {
          const name = [...q, k.value.field].join(".");
          // Within a map variable (context.arguments.x.y): any key, checked at run time.
          for (let i = 2; i <= q.length; i++) {
            const prefix = q.slice(0, i).join(".");
            if (VARIABLES[prefix]?.type.kind === "map") {
              return k.value.testOnly ? BOOL : DYN;
            }
          }
          const v = VARIABLES[name];
          if (v && q.length === 1) {
            if (k.value.testOnly) {
              this.fail(e, `has(${name}) is always true; compare with null instead`);
            }
            return v.type;
          }
          const known = Object.keys(VARIABLES).filter((n) => n.startsWith(`${q[0]}.`));
          this.fail(e, `unknown field \`${name}\` (known: ${known.join(", ")})`);
        }
        const t = this.check(operand);
        if (t.kind !== "map" && t.kind !== "dyn")
          this.fail(e, `a ${t.kind} has no field \`${k.value.field}\``);
        return k.value.testOnly ? BOOL : DYN;
      }
      case "callExpr":
        return this.checkCall(e, k.value.function, k.value.target, k.value.args);
      case "listExpr":
        for (const el of k.value.elements) this.check(el);
        return { kind: "list" };
      case "structExpr":
        if (k.value.messageName)
          this.fail(e, `message construction (${k.value.messageName}) is not supported`);
        for (const entry of k.value.entries) {
          if (entry.keyKind.case === "mapKey") this.check(entry.keyKind.value);
          if (entry.value) this.check(entry.value);
        }
        return { kind: "map" };
      case "comprehensionExpr": {
        const c = k.value;
        if (c.iterRange) {
          const t = this.check(c.iterRange);
          if (!["list", "map", "dyn"].includes(t.kind))
            this.fail(c.iterRange, `cannot iterate over a ${t.kind}`);
        }
        if (c.accuInit) this.check(c.accuInit);
        const pushed = [c.iterVar, c.iterVar2, c.accuVar].filter((v) => v !== "");
        this.scopes.push(...pushed);
        try {
          if (c.loopCondition) this.check(c.loopCondition);
          if (c.loopStep) this.check(c.loopStep);
          return c.result ? this.check(c.result) : DYN;
        } finally {
          this.scopes.length -= pushed.length;
        }
      }
      default:
        this.fail(e, "unsupported expression");
    }
  }

  private checkCall(e: Expr, fn: string, target: Expr | undefined, args: Expr[]): StaticType {
    const t = target ? this.check(target) : undefined;
    const a = args.map((x) => this.check(x));
    if (!PLANNER_FUNCTIONS.has(fn) && CONDITION_ENV.funcs.find(fn) === undefined) {
      this.fail(e, `unknown function \`${fn}\``);
    }
    const [x, y] = a;
    switch (fn) {
      case "_&&_":
      case "_||_":
      case "!_":
      case "@not_strictly_false":
        a.forEach((v, i) => {
          if (v.kind !== "bool" && v.kind !== "dyn") {
            this.fail(args[i] as Expr, `${opName(fn)} needs a bool operand, got ${v.kind}`);
          }
        });
        return BOOL;
      case "_==_":
      case "_!=_":
        if (x && y && !comparable(x, y)) this.fail(e, `cannot compare ${x.kind} with ${y.kind}`);
        return BOOL;
      case "_<_":
      case "_<=_":
      case "_>_":
      case "_>=_":
        if (x && y && x.kind !== "dyn" && y.kind !== "dyn") {
          const ok =
            ORDERED.has(x.kind) &&
            ORDERED.has(y.kind) &&
            (x.kind === y.kind || (NUMERIC.has(x.kind) && NUMERIC.has(y.kind)));
          if (!ok) this.fail(e, `cannot order ${x.kind} against ${y.kind}`);
        }
        return BOOL;
      case "@in":
        if (y && !["list", "map", "dyn"].includes(y.kind))
          this.fail(e, `\`in\` needs a list or map, got ${y.kind}`);
        return BOOL;
      case "_?_:_":
        if (x && x.kind !== "bool" && x.kind !== "dyn")
          this.fail(e, `?: needs a bool condition, got ${x.kind}`);
        return a[1] && a[2] && a[1].kind === a[2].kind ? { kind: a[1].kind } : DYN;
      case "_+_":
      case "_-_":
      case "_*_":
      case "_/_":
      case "_%_":
        if (x && y && x.kind !== "dyn" && y.kind !== "dyn" && x.kind !== y.kind) {
          const temporal = ["timestamp", "duration"];
          if (!(temporal.includes(x.kind) && temporal.includes(y.kind))) {
            const why = NUMERIC.has(x.kind) && NUMERIC.has(y.kind) ? " (CEL does not mix numeric types)" : "";
            this.fail(e, `${opName(fn)} cannot combine ${x.kind} and ${y.kind}${why}`);
          }
        }
        return x && x.kind === y?.kind && x.kind !== "timestamp" ? { kind: x.kind } : DYN;
      case "size":
        return { kind: "int" };
      case "startsWith":
      case "endsWith":
      case "contains":
      case "matches":
        if (t && t.kind !== "string" && t.kind !== "dyn")
          this.fail(e, `${fn}() applies to a string, got ${t.kind}`);
        return BOOL;
      default:
        return DYN;
    }
  }
}

function opName(fn: string): string {
  return fn.replace(/^[_@!]+|_+$/g, "").replace(/^_|_$/g, "") || fn;
}

function exampleField(root: string): string {
  return Object.keys(VARIABLES).find((n) => n.startsWith(`${root}.`)) ?? `${root}.…`;
}
