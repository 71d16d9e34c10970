/**
 * The variables a policy condition may read (./condition.ts): each field of PolicyInput bound
 * as a flat, qualified CEL variable (`principal.expiresInSeconds`, `resource.tier`, …; CEL
 * name resolution resolves `a.b` to a declared variable `a.b` before selecting field `b` of
 * `a`), with its static type for the checker (./conditionCheck.ts). Only `context.arguments`
 * and `resource.annotations` are maps (their keys come from the request). Whole numbers are
 * CEL `int`, other numbers `double`; `context.time` is a `google.protobuf.Timestamp`.
 */
import {
  type CelInput,
  CelScalar,
  type CelType,
  celEnv,
  celList,
  celMap,
  listType,
  mapType,
} from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { PolicyInput } from "./types.js";

export type Kind =
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

export interface StaticType {
  kind: Kind;
  /** May also be null at run time (compare with `!= null` first). */
  nullable?: boolean;
}

interface Variable {
  type: StaticType;
  cel: CelType;
  get(b: ConditionBindings): unknown;
}

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
const NO_ACTORS: readonly string[] = Object.freeze([]);
const ANY_MAP = mapType(CelScalar.STRING, CelScalar.DYN);

const text = (get: (i: PolicyInput) => string): Variable => ({
  type: { kind: "string" },
  cel: CelScalar.STRING,
  get: (b) => get(b.input),
});
const optionalText = (get: (i: PolicyInput) => string | null | undefined): Variable => ({
  type: { kind: "string", nullable: true },
  cel: CelScalar.DYN,
  get: (b) => get(b.input) ?? null,
});
const optionalInt = (get: (i: PolicyInput) => number | null | undefined): Variable => ({
  type: { kind: "int", nullable: true },
  cel: CelScalar.DYN,
  get: (b) => intOrNull(get(b.input)),
});
const textList = (get: (i: PolicyInput) => readonly string[]): Variable => ({
  type: { kind: "list" },
  cel: STRING_LIST,
  get: (b) => get(b.input),
});

/** Every variable a condition may read. Keep in step with PolicyInput (types.ts). */
export const VARIABLES: Readonly<Record<string, Variable>> = {
  "principal.id": text((i) => i.principal.id),
  "principal.kind": text((i) => i.principal.kind),
  "principal.method": text((i) => i.principal.method),
  "principal.groups": textList((i) => i.principal.groups),
  "principal.scopes": textList((i) => i.principal.scopes),
  "principal.tenant": optionalText((i) => i.principal.tenant),
  "principal.environment": text((i) => i.principal.environment),
  "principal.credentialId": optionalText((i) => i.principal.credentialId),
  "principal.credentialAgeSeconds": optionalInt((i) => i.principal.credentialAgeSeconds),
  "principal.expiresInSeconds": optionalInt((i) => i.principal.expiresInSeconds),
  "task.id": optionalText((i) => i.task?.id),
  "task.purpose": optionalText((i) => i.task?.purpose),
  "task.remainingCalls": optionalInt((i) => i.task?.remainingCalls),
  "task.ageSeconds": optionalInt((i) => i.task?.ageSeconds),
  "actor.sub": optionalText((i) => i.actor?.sub),
  "actor.chain": textList((i) => i.actor?.chain ?? NO_ACTORS),
  "action.method": text((i) => i.action.method),
  "resource.server": text((i) => i.resource.server),
  "resource.kind": text((i) => i.resource.kind),
  "resource.name": optionalText((i) => i.resource.name),
  "resource.tier": optionalText((i) => i.resource.tier),
  "resource.openWorld": {
    type: { kind: "bool", nullable: true },
    cel: CelScalar.DYN,
    get: (b) => b.input.resource.openWorld ?? null,
  },
  "resource.annotations": { type: { kind: "map" }, cel: ANY_MAP, get: (b) => b.annotationMap() },
  "context.arguments": { type: { kind: "map" }, cel: ANY_MAP, get: (b) => b.arguments() },
  "context.time": { type: { kind: "timestamp" }, cel: CelScalar.DYN, get: (b) => b.timestamp() },
  "context.environment": text((i) => i.context.environment),
  "context.clientName": optionalText((i) => i.context.clientName),
  "context.clientVersion": optionalText((i) => i.context.clientVersion),
  "context.sourceAddress": optionalText((i) => i.context.sourceAddress),
  "context.protocolVersion": optionalText((i) => i.context.protocolVersion),
};

for (const [name, v] of Object.entries(VARIABLES)) {
  Object.defineProperty(ConditionBindings.prototype, name, {
    get(this: ConditionBindings) {
      return v.get(this);
    },
  });
}

/** The roots of the qualified names: not values themselves. */
export const ROOTS = new Set(["principal", "task", "actor", "action", "resource", "context"]);
/** The CEL environment: the variables above and the strings extension. */
export const CONDITION_ENV = celEnv({
  variables: Object.fromEntries(Object.entries(VARIABLES).map(([k, v]) => [k, v.cel])),
  funcs: strings,
});
