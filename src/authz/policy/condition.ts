/**
 * A rule's `when` condition: a CEL expression (https://cel.dev, langdef) over PolicyInput,
 * evaluated with @bufbuild/cel.
 *
 * Variables are the input's fields, written `principal.expiresInSeconds`,
 * `resource.tier`, `context.arguments.path`, …; each is bound as a flat, qualified CEL
 * variable (CEL name resolution resolves `a.b` to a declared variable `a.b` before
 * selecting field `b` of `a`), so a condition reads scalars instead of walking nested maps.
 * Only `context.arguments` and `resource.annotations` are maps (their keys come from the
 * request); whole objects (`principal` alone) are not values.
 *
 * @bufbuild/cel 0.6 exports no type checker, so compile() checks what can be known
 * statically: unknown variables and fields, unknown functions, operand kinds of operators
 * and comparisons, and that the condition yields a bool.
 *
 * Numbers: whole numbers (credential age/expiry, integral JSON argument values) are CEL
 * `int`, other numbers `double`; `context.time` is a `google.protobuf.Timestamp`.
 */

import {
  type CelInput,
  CelScalar,
  type CelType,
  celEnv,
  celList,
  celMap,
  isCelError,
  listType,
  mapType,
  parse,
  plan,
} from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { PolicyInput } from "./types.js";

type Kind =
  | "bool"
  | "int"
  | "uint"
  | "double"
  | "string"
  | "bytes"
  | "null"
  | "list"
  | "map"
  | "timestamp"
  | "duration"
  | "type"
  | "dyn";

interface StaticType {
  kind: Kind;
  /** May also be null at run time (compare with `!= null` first). */
  nullable?: boolean;
}

interface Variable {
  type: StaticType;
  cel: CelType;
  get(b: ConditionBindings): unknown;
}

const str = (nullable = false): StaticType => ({ kind: "string", nullable });
const int = (nullable = false): StaticType => ({ kind: "int", nullable });

function intOrNull(n: number | null | undefined): bigint | number | null {
  if (n === null || n === undefined) return null;
  return Number.isSafeInteger(n) ? BigInt(n) : n;
}

const MAX_DEPTH = 32;

/** Request-controlled JSON to CEL values, once per decision; too deep is an error (fail closed). */
function toCelValue(v: unknown, depth: number): CelInput {
  if (depth > MAX_DEPTH) throw new Error(`value nested deeper than ${MAX_DEPTH} levels`);
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isSafeInteger(v) ? BigInt(v) : v;
    case "bigint":
      return v;
    case "object":
      if (Array.isArray(v)) return celList(v.map((e) => toCelValue(e, depth + 1)));
      return toCelMap(v as Record<string, unknown>, depth);
    default:
      return null;
  }
}

function toCelMap(o: Readonly<Record<string, unknown>>, depth: number): CelInput {
  const m = new Map<string, CelInput>();
  for (const k of Object.keys(o)) m.set(k, toCelValue(o[k], depth + 1));
  return celMap(m);
}

/**
 * One decision's CEL bindings. The evaluator looks variables up by qualified name
 * (`this["principal.id"]`); getters on the prototype read the input on demand and
 * convert the two request-controlled maps once.
 */
export class ConditionBindings {
  private args: CelInput | undefined;
  private annotations: CelInput | undefined;
  private time: CelInput | undefined;
  constructor(readonly input: PolicyInput) {}
  arguments(): CelInput {
    if (this.args === undefined) this.args = toCelMap(this.input.context.arguments ?? {}, 0);
    return this.args;
  }
  annotationMap(): CelInput {
    if (this.annotations === undefined) {
      this.annotations = toCelMap(this.input.resource.annotations ?? {}, 0);
    }
    return this.annotations;
  }
  timestamp(): CelInput {
    if (this.time === undefined) {
      const ms = this.input.context.time.getTime();
      const seconds = Math.floor(ms / 1000);
      // google.protobuf.Timestamp in @bufbuild/protobuf's plain-message shape.
      this.time = {
        $typeName: "google.protobuf.Timestamp",
        seconds: BigInt(seconds),
        nanos: (ms - seconds * 1000) * 1_000_000,
      } as unknown as CelInput;
    }
    return this.time;
  }
}

const STRING_LIST = listType(CelScalar.STRING);
const ANY_MAP = mapType(CelScalar.STRING, CelScalar.DYN);

/** Every variable a condition may read. Keep in step with PolicyInput (types.ts). */
export const VARIABLES: Readonly<Record<string, Variable>> = {
  "principal.id": { type: str(), cel: CelScalar.STRING, get: (b) => b.input.principal.id },
  "principal.kind": { type: str(), cel: CelScalar.STRING, get: (b) => b.input.principal.kind },
  "principal.method": {
    type: str(),
    cel: CelScalar.STRING,
    get: (b) => b.input.principal.method,
  },
  "principal.groups": {
    type: { kind: "list" },
    cel: STRING_LIST,
    get: (b) => b.input.principal.groups,
  },
  "principal.scopes": {
    type: { kind: "list" },
    cel: STRING_LIST,
    get: (b) => b.input.principal.scopes,
  },
  "principal.tenant": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.principal.tenant ?? null,
  },
  "principal.environment": {
    type: str(),
    cel: CelScalar.STRING,
    get: (b) => b.input.principal.environment,
  },
  "principal.credentialId": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.principal.credentialId ?? null,
  },
  "principal.credentialAgeSeconds": {
    type: int(true),
    cel: CelScalar.DYN,
    get: (b) => intOrNull(b.input.principal.credentialAgeSeconds),
  },
  "principal.expiresInSeconds": {
    type: int(true),
    cel: CelScalar.DYN,
    get: (b) => intOrNull(b.input.principal.expiresInSeconds),
  },
  "action.method": { type: str(), cel: CelScalar.STRING, get: (b) => b.input.action.method },
  "resource.server": { type: str(), cel: CelScalar.STRING, get: (b) => b.input.resource.server },
  "resource.kind": { type: str(), cel: CelScalar.STRING, get: (b) => b.input.resource.kind },
  "resource.name": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.resource.name ?? null,
  },
  "resource.tier": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.resource.tier ?? null,
  },
  "resource.openWorld": {
    type: { kind: "bool", nullable: true },
    cel: CelScalar.DYN,
    get: (b) => b.input.resource.openWorld ?? null,
  },
  "resource.annotations": { type: { kind: "map" }, cel: ANY_MAP, get: (b) => b.annotationMap() },
  "context.arguments": { type: { kind: "map" }, cel: ANY_MAP, get: (b) => b.arguments() },
  "context.time": {
    type: { kind: "timestamp" },
    cel: CelScalar.DYN,
    get: (b) => b.timestamp(),
  },
  "context.environment": {
    type: str(),
    cel: CelScalar.STRING,
    get: (b) => b.input.context.environment,
  },
  "context.clientName": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.context.clientName ?? null,
  },
  "context.clientVersion": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.context.clientVersion ?? null,
  },
  "context.sourceAddress": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.context.sourceAddress ?? null,
  },
  "context.protocolVersion": {
    type: str(true),
    cel: CelScalar.DYN,
    get: (b) => b.input.context.protocolVersion ?? null,
  },
};

for (const [name, v] of Object.entries(VARIABLES)) {
  Object.defineProperty(ConditionBindings.prototype, name, {
    get(this: ConditionBindings) {
      return v.get(this);
    },
  });
}

const ROOTS = new Set(["principal", "action", "resource", "context"]);
const ENV = celEnv({
  variables: Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.cel])),
  funcs: strings,
});

/** Thrown by compileCondition; `exprLine` is 1-based within the expression text. */
export class ConditionError extends Error {
  constructor(
    message: string,
    readonly exprLine: number,
  ) {
    super(message);
  }
}

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };

export interface CompiledCondition {
  readonly source: string;
  evaluate(bindings: ConditionBindings): ConditionResult;
}

type ParsedExpr = ReturnType<typeof parse>;
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
const BOOL: StaticType = { kind: "bool" };

function comparable(a: StaticType, b: StaticType): boolean {
  if (a.kind === "dyn" || b.kind === "dyn") return true;
  if (a.kind === b.kind) return true;
  if (NUMERIC.has(a.kind) && NUMERIC.has(b.kind)) return true;
  return (a.kind === "null" && b.nullable === true) || (b.kind === "null" && a.nullable === true);
}

/** Static checks over the parsed expression; see the module comment. */
class ConditionChecker {
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
      case "constExpr":
        switch (k.value.constantKind.case) {
          case "boolValue":
            return BOOL;
          case "int64Value":
            return { kind: "int" };
          case "uint64Value":
            return { kind: "uint" };
          case "doubleValue":
            return { kind: "double" };
          case "stringValue":
            return { kind: "string" };
          case "bytesValue":
            return { kind: "bytes" };
          case "nullValue":
            return { kind: "null" };
          default:
            return DYN;
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
    if (!PLANNER_FUNCTIONS.has(fn) && ENV.funcs.find(fn) === undefined) {
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
  const run = plan(ENV, parsed);
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
