/**
 * The request pipeline (src/pipeline/), fuzzed in-process (fast-check), fast enough for a
 * long run of a million inputs (test/e2e/request-path-fuzz.test.ts fuzzes the whole gateway
 * over real HTTP, at ~100 ms an input). Each generated input is one POST handed to the real
 * Pipeline: API-key authentication (real keys issued with the CLI's code into a real SQLite
 * store, read through a real Keyring) or an OAuth / anonymous caller, then classification of
 * the JSON-RPC text, the mirrored headers (Mcp-Method, Mcp-Name), the Mcp-Param-* headers,
 * the credential's scope, and the default policy pack's decision over a real ToolCatalogue.
 * What is checked is what leaves the pipeline: the reply written to the response, the one
 * audit record, and what reached the (fake) upstream.
 *
 * Invariants, each checked against an oracle written here, not taken from the engine:
 * - every refusal is a 4xx with a JSON-RPC error body, carrying the request's id whenever
 *   the body had a valid one (no 5xx for client input), and every input leaves exactly one
 *   audit record;
 * - a header that disagrees with the body never passes, and what goes upstream says what
 *   the body says;
 * - an invalid, tampered, revoked, expired, unknown or other-environment key never
 *   authenticates, and a live key authenticates as itself;
 * - the decision equals the default pack's documented semantics (docs/policy.md, "The
 *   default pack"): in particular an API key never gets allow on a write- or
 *   destructive-tier tool, and an unknown tool (a look-alike of a listed one included) is
 *   never allowed.
 *
 * Budget: PORTCULLIS_FUZZ_RUNS inputs (default 3000, the CI budget); a long run by hand:
 *   PORTCULLIS_FUZZ_RUNS=1000000 nice -n 10 node scripts/run-tests.mjs pipeline-core-fuzz
 * PORTCULLIS_FUZZ_SEED replays a reported seed.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { type IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import pino from "pino";
import { mintKey } from "../src/authn/keyFormat.js";
import { issueKey } from "../src/authn/keyLifecycle.js";
import { Keyring } from "../src/authn/keyring.js";
import type { AccessTokenVerifier, TokenCheck } from "../src/authn/oauthToken.js";
import { loadPolicyFiles } from "../src/authz/policy/compile.js";
import { DEFAULT_POLICY_PACK } from "../src/authz/policy/defaultPack.js";
import type { CompiledPolicy } from "../src/authz/policy/types.js";
import { ToolCatalogue } from "../src/authz/toolCatalogue.js";
import { ListedTools } from "../src/classify/listedTools.js";
import { type ClassifiedMessage, classifyMessage } from "../src/classify/message.js";
import { parseConfig } from "../src/config/load.js";
import type { JsonRpcId } from "../src/core/errors.js";
import type { Principal } from "../src/core/principal.js";
import type { PostExchange, StreamExchange, Upstream } from "../src/forward/upstream.js";
import { CallerLimits } from "../src/pipeline/callerLimits.js";
import type { Route } from "../src/pipeline/deps.js";
import { Pipeline } from "../src/pipeline/index.js";
import { openStore } from "../src/store/open.js";
import type { Store } from "../src/store/types.js";
import { createMetrics } from "../src/telemetry/metrics.js";
import { RecordingAudit } from "./pipeline/harness.js";

const RUNS = Number(process.env.PORTCULLIS_FUZZ_RUNS ?? 3000);
const SEED =
  process.env.PORTCULLIS_FUZZ_SEED === undefined ? undefined : Number(process.env.PORTCULLIS_FUZZ_SEED);
const SERVER = "demo";
/** The same server, open to anonymous callers (route.anonymous). */
const ANON = "anon";
type Env = "dev" | "prod";
type Tier = "read" | "write" | "destructive";

// ---------------------------------------------------------------------------------------
// The upstream's tools, and the tier each must get (docs/policy.md "Risk tiers": readOnlyHint
// true → read; else destructiveHint false → write; else destructive; open-world unless
// openWorldHint is false; a missing or non-boolean hint means the stricter value).
// ---------------------------------------------------------------------------------------

const WRITE_SCHEMA = {
  type: "object",
  properties: {
    repo: { type: "string", "x-mcp-header": "Repo" },
    count: { type: "integer", "x-mcp-header": "Count" },
    force: { type: "boolean", "x-mcp-header": "Force" },
    where: { type: "object", properties: { region: { type: "string", "x-mcp-header": "Region" } } },
  },
};

const TOOLS: ReadonlyArray<{ name: string; annotations?: unknown; tier: Tier; openWorld: boolean }> = [
  {
    name: "read_a",
    annotations: { readOnlyHint: true, openWorldHint: false },
    tier: "read",
    openWorld: false,
  },
  { name: "read_ow", annotations: { readOnlyHint: true }, tier: "read", openWorld: true },
  {
    name: "write_a",
    annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
    tier: "write",
    openWorld: false,
  },
  { name: "write_ow", annotations: { destructiveHint: false }, tier: "write", openWorld: true },
  {
    name: "destroy_a",
    annotations: { destructiveHint: true, openWorldHint: false },
    tier: "destructive",
    openWorld: false,
  },
  { name: "destroy_ow", tier: "destructive", openWorld: true },
  {
    name: "bad_hint",
    annotations: { readOnlyHint: "true", destructiveHint: 0, openWorldHint: "false" },
    tier: "destructive",
    openWorld: true,
  },
];
const TOOL_BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));
/** The tool whose schema marks parameters for Mcp-Param-* headers. */
const HEADER_TOOL = "write_a";

/** Look-alikes of listed tools: never listed themselves, so unknown (destructive, open-world). */
const LOOK_ALIKES = [
  "re\u0430d_a", // Cyrillic а
  "READ_A",
  "read_a\u200b",
  "\uff52\uff45\uff41\uff44_a", // fullwidth
  "read_a ",
  " read_a",
  "read\u2010a",
  "write_\u0430",
  "Write_a",
  "read_ow\u0000",
  "read_a/",
  "read_a\n",
];

const METHODS = [
  "tools/call",
  "prompts/get",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "tools/list",
  "resources/list",
  "resources/templates/list",
  "prompts/list",
  "initialize",
  "ping",
  "server/discover",
  "completion/complete",
  "logging/setLevel",
  "notifications/initialized",
  "notifications/cancelled",
  "sampling/createMessage",
  "tools/call ",
  "Tools/Call",
  "tools/cаll",
  "",
];

// ---------------------------------------------------------------------------------------
// The default pack's documented semantics (docs/policy.md "The default pack"), as an oracle.
// ---------------------------------------------------------------------------------------

const DISCOVERY = new Set([
  "initialize",
  "ping",
  "server/discover",
  "tools/list",
  "resources/list",
  "resources/templates/list",
  "prompts/list",
  "completion/complete",
  "logging/setLevel",
]);
const READS = new Set(["resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/get"]);
const WRITING_SCOPES = ["mcp", "mcp:tools", "mcp:tools:write"];

function oracle(
  env: Env,
  p: Principal,
  method: string,
  tool: { tier: Tier; openWorld: boolean } | null,
): "allow" | "review" | "deny" {
  const credential = p.method === "api_key" || p.method === "oauth";
  // 00-baseline: no standing privilege.
  if (credential && p.expiresAt === null) return "deny";
  const call = method === "tools/call" && tool !== null;
  const tier = call ? tool.tier : null;
  // 40-prod: API keys only read (discovery except logging/setLevel, reads, read-tier calls).
  if (env === "prod" && p.method === "api_key") {
    const reads = (DISCOVERY.has(method) && method !== "logging/setLevel") || READS.has(method);
    if (!reads && !(call && tier === "read")) return "deny";
  }
  const writer =
    p.method === "oauth" &&
    p.kind === "user" &&
    [...(p.oauthScopes ?? [])].some((s) => WRITING_SCOPES.includes(s));
  // 30-destructive, and 40-prod's open-world review for callers the tier rules admit.
  if (call && tier === "destructive" && writer) return "review";
  if (env === "prod" && call && tool.openWorld && (tier === "read" || writer)) return "review";
  if (DISCOVERY.has(method) || READS.has(method)) return "allow";
  if (call && tier === "read") return "allow";
  if (call && tier === "write" && writer) return "allow";
  return "deny";
}

// ---------------------------------------------------------------------------------------
// Keys: issued with the CLI's code (issueKey) into a real SQLite store.
// ---------------------------------------------------------------------------------------

type KeyState = "live" | "revoked" | "expired";
interface FuzzKey {
  env: Env;
  state: KeyState;
  id: string;
  key: string;
}

const B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** The key format's 6-character base62 CRC-32 (src/authn/keyFormat.ts doc comment). */
function checksum(body: string): string {
  let n = crc32(body);
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = B62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A credential to present, and whether it must authenticate (as which key). */
interface Credential {
  label: string;
  authorization: string | string[] | undefined;
  /** The key that must authenticate, or null: this credential must be refused. */
  expect: FuzzKey | null;
}

const state: {
  dir: string;
  store: Store;
  keys: FuzzKey[];
  keyrings: Record<Env, Keyring>;
  policy: CompiledPolicy;
  catalogue: ToolCatalogue;
  listed: ListedTools;
  pipelines: Record<Env, Pipeline>;
  audit: RecordingAudit;
  upstream: FuzzUpstream;
  verifier: FuzzTokenVerifier;
} = {} as never;

function credentialArb(env: Env): fc.Arbitrary<Credential> {
  const keys = state.keys;
  const bearer = (k: string) => `Bearer ${k}`;
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .oneof(
          {
            weight: 3,
            arbitrary: fc.constantFrom(...keys.filter((k) => k.env === env && k.state === "live")),
          },
          { weight: 2, arbitrary: fc.constantFrom(...keys) },
        )
        .chain((k) =>
          fc.constantFrom<Credential>(
            {
              label: `key ${k.env}/${k.state}`,
              authorization: bearer(k.key),
              expect: k.env === env && k.state === "live" ? k : null,
            },
            {
              label: `key ${k.env}/${k.state} (lower-case scheme, spaces)`,
              authorization: `bearer   ${k.key}`,
              expect: k.env === env && k.state === "live" ? k : null,
            },
            { label: "key with trailing junk", authorization: `${bearer(k.key)}x`, expect: null },
            { label: "key without scheme", authorization: k.key, expect: null },
            { label: "key as Basic", authorization: `Basic ${k.key}`, expect: null },
            { label: "key with trailing space", authorization: `${bearer(k.key)} `, expect: null },
            { label: "key twice", authorization: [bearer(k.key), bearer(k.key)], expect: null },
          ),
        ),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...keys), fc.nat(), fc.constantFrom(...B62), fc.boolean())
        .map(([k, at, ch, recompute]): Credential => {
          // Tamper one character of the secret; with the checksum recomputed the key still
          // parses, so only the stored HMAC can refuse it.
          const body = k.key.slice(0, -6);
          const start = body.length - 32;
          const i = start + (at % 32);
          const c = body[i] === ch ? B62[(B62.indexOf(ch) + 1) % 62] : ch;
          const tampered = body.slice(0, i) + c + body.slice(i + 1);
          return {
            label: `tampered secret (checksum ${recompute ? "recomputed" : "stale"})`,
            authorization: bearer(tampered + (recompute ? checksum(tampered) : k.key.slice(-6))),
            expect: null,
          };
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...keys), fc.constantFrom("dev", "prod", "test"))
        .map(([k, other]): Credential => {
          // The environment rewritten (checksum recomputed): the HMAC covers the whole key.
          const body = `pcl_${other}_${k.key.slice(k.key.indexOf("_", 4) + 1, -6)}`;
          return {
            label: `environment rewritten to ${other}`,
            authorization: bearer(body + checksum(body)),
            expect: other === k.env && k.env === env && k.state === "live" ? k : null,
          };
        }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom("dev", "prod").map(
        (e): Credential => ({
          label: "minted, never issued",
          authorization: bearer(mintKey(e).key),
          expect: null,
        }),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constant<Credential>({ label: "absent", authorization: undefined, expect: null }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 40 })),
          fc.boolean(),
        )
        // A garbage string could only authenticate by being a live key: it is not one.
        .map(
          ([s, scheme]): Credential => ({
            label: "garbage",
            authorization: scheme ? `Bearer ${s}` : s,
            expect: null,
          }),
        ),
    },
  );
}

// ---------------------------------------------------------------------------------------
// JSON-RPC text.
// ---------------------------------------------------------------------------------------

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const toolName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TOOLS.map((t) => t.name)) },
  { weight: 2, arbitrary: fc.constant(HEADER_TOOL) },
  { weight: 3, arbitrary: fc.constantFrom(...LOOK_ALIKES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: jsonValue },
);
const idArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer() },
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, {}, [], 0, -0, "", 1e308, 2 ** 53 + 1) },
);
/** Raw id text, for ids JSON.stringify cannot make (out-of-range and odd numerals). */
const rawIdText = fc.constantFrom(
  "1e999",
  "-1e999",
  "1.0",
  "1E2",
  "-0",
  "0.0000001",
  '"\\u0000"',
  '"\\ud800"',
);

const argsArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        repo: fc.oneof(
          fc.string({ maxLength: 16 }),
          fc.constantFrom(" x", "é", "=?base64?YQ==?=", "a\tb"),
          jsonValue,
        ),
        count: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true }), jsonValue),
        force: fc.oneof(fc.boolean(), jsonValue),
        where: fc.oneof(fc.record({ region: fc.oneof(fc.string({ maxLength: 8 }), jsonValue) }), jsonValue),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: jsonValue },
);

interface Body {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

const bodyArb: fc.Arbitrary<Body> = fc
  .record(
    {
      jsonrpc: fc.oneof({ weight: 20, arbitrary: fc.constant("2.0") }, { weight: 1, arbitrary: jsonValue }),
      id: idArb,
      method: fc.oneof(
        { weight: 20, arbitrary: fc.constant("tools/call") },
        { weight: 20, arbitrary: fc.constantFrom(...METHODS) },
        { weight: 1, arbitrary: jsonValue },
      ),
      params: fc.oneof(
        {
          weight: 20,
          arbitrary: fc.record(
            {
              name: toolName,
              uri: fc.oneof(fc.constantFrom("file:///etc/passwd", "mem://a"), jsonValue),
              arguments: argsArb,
              _meta: fc.oneof(
                fc.record({
                  "io.modelcontextprotocol/protocolVersion": fc.constantFrom(
                    "2026-07-28",
                    "2025-06-18",
                    "2099-01-01",
                    5,
                  ),
                }),
                jsonValue,
              ),
            },
            { requiredKeys: ["name", "arguments"] },
          ),
        },
        { weight: 1, arbitrary: jsonValue },
      ),
    },
    { requiredKeys: ["jsonrpc", "id", "method", "params"] },
  )
  .chain((b) =>
    fc
      .oneof(
        { weight: 12, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.constantFrom("jsonrpc", "id", "method", "params") },
      )
      .map((drop) => {
        const out: Record<string, unknown> = { ...b };
        if (drop !== null) delete out[drop];
        return out as Body;
      }),
  );

type Wrapping =
  | { kind: "plain" }
  | { kind: "batch" }
  | { kind: "rawId"; text: string }
  | { kind: "duplicateKey"; prefix: string }
  | { kind: "deep"; depth: number; arrays: boolean }
  | { kind: "huge"; length: number }
  | { kind: "truncate"; at: number }
  | { kind: "garbage"; text: string };

const wrappingArb: fc.Arbitrary<Wrapping> = fc.oneof(
  { weight: 60, arbitrary: fc.constant<Wrapping>({ kind: "plain" }) },
  { weight: 2, arbitrary: fc.constant<Wrapping>({ kind: "batch" }) },
  { weight: 3, arbitrary: rawIdText.map((text): Wrapping => ({ kind: "rawId", text })) },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(
        '"method":"tools/list",',
        '"method":"tools/call",',
        '"params":{"name":"read_a"},',
        '"id":7,',
        '"jsonrpc":"1.0",',
        '"__proto__":{"method":"ping"},',
      )
      .map((prefix): Wrapping => ({ kind: "duplicateKey", prefix })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 80, max: 100_000 })), fc.boolean())
      .map(([depth, arrays]): Wrapping => ({ kind: "deep", depth, arrays })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        { weight: 9, arbitrary: fc.integer({ min: 1, max: 10_000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 1_000_000 }) },
      )
      .map((length): Wrapping => ({ kind: "huge", length })),
  },
  { weight: 2, arbitrary: fc.nat().map((at): Wrapping => ({ kind: "truncate", at })) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: "binary", maxLength: 40 }),
        fc.constantFrom("", "null", "[]", "{}", "1", '"x"', '{"jsonrpc":"2.0"'),
      )
      .map((text): Wrapping => ({ kind: "garbage", text })),
  },
);

/** The request body's text: the generated message, sometimes twisted into something odd. */
function bodyText(body: Body, w: Wrapping): string {
  const text = JSON.stringify(body);
  switch (w.kind) {
    case "plain":
      return text;
    case "batch":
      return `[${text}]`;
    case "rawId":
      return `{"id":${w.text},${text.slice(1)}`;
    case "duplicateKey":
      return `{${w.prefix}${text.slice(1)}`;
    case "deep": {
      const [open, close] = w.arrays ? ["[", "]"] : ['{"a":', "}"];
      const nested = `${open.repeat(w.depth)}0${close.repeat(w.depth)}`;
      return text.endsWith("}") ? `${text.slice(0, -1)},"extra":${nested}}` : text;
    }
    case "huge":
      return `{"huge":"${"\u00e9a".repeat(w.length >> 1)}",${text.slice(1)}`;
    case "truncate":
      return text.slice(0, w.at % (text.length + 1));
    case "garbage":
      return w.text;
  }
}

/** The id an error must echo: the body's own id when it is a JSON-RPC object with a valid one. */
function expectedId(text: string): JsonRpcId {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
  const id = (parsed as Record<string, unknown>).id;
  return typeof id === "string" || (typeof id === "number" && Number.isFinite(id)) ? id : null;
}

// ---------------------------------------------------------------------------------------
// Headers: generated to agree or to disagree with the body.
// ---------------------------------------------------------------------------------------

/** A header built from a claimed value: it disagrees exactly when the claim is not the body's. */
type Claim =
  | { mode: "absent" }
  | { mode: "value"; value: unknown; base64: boolean; twice: boolean }
  | { mode: "invalid" };

const claimArb = (bodyValue: fc.Arbitrary<unknown>): fc.Arbitrary<Claim> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant<Claim>({ mode: "absent" }) },
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          bodyValue,
          fc.boolean(),
          fc.oneof(
            { weight: 15, arbitrary: fc.constant(false) },
            { weight: 1, arbitrary: fc.constant(true) },
          ),
        )
        .map(([value, base64, twice]): Claim => ({ mode: "value", value, base64, twice })),
    },
    { weight: 1, arbitrary: fc.constant<Claim>({ mode: "invalid" }) },
  );

/** Marks "use the body's own value" inside a claim, resolved once the body is known. */
const SAME = Symbol("same");

function b64(text: string): string {
  return `=?base64?${Buffer.from(text, "utf8").toString("base64")}?=`;
}

/** Header text of a claimed value (none for values a header cannot carry). */
function claimText(value: unknown, base64: boolean): string | null {
  if (typeof value === "string") {
    const plain = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !value.startsWith("=?base64?");
    return base64 || !plain ? b64(value) : value;
  }
  if (typeof value === "boolean") return String(value);
  if (typeof value === "number" && Number.isFinite(value))
    return base64 && Number.isInteger(value) ? value.toFixed(1) : String(value);
  return null;
}

interface Headers {
  method: Claim;
  name: Claim;
  /** MCP-Protocol-Version; SAME copies the body's `_meta` version. */
  version: string | typeof SAME | undefined;
  params: Record<string, Claim>;
}

const headersArb: fc.Arbitrary<Headers> = fc.record({
  method: claimArb(
    fc.oneof(
      { weight: 8, arbitrary: fc.constant<unknown>(SAME) },
      { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
    ),
  ),
  name: claimArb(
    fc.oneof(
      { weight: 8, arbitrary: fc.constant<unknown>(SAME) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(...TOOLS.map((t) => t.name), ...LOOK_ALIKES, "file:///etc/passwd"),
      },
    ),
  ),
  version: fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: fc.constant<typeof SAME>(SAME) },
    { weight: 3, arbitrary: fc.constantFrom("2025-06-18", "2025-11-25") },
    { weight: 2, arbitrary: fc.constantFrom("2026-07-28", "2099-01-01", "garbage") },
  ),
  params: fc.record(
    {
      repo: claimArb(
        fc.oneof(fc.constant<unknown>(SAME), fc.string({ maxLength: 8 }), fc.constantFrom("é", " x")),
      ),
      count: claimArb(fc.oneof(fc.constant<unknown>(SAME), fc.integer({ min: -5, max: 5 }))),
      force: claimArb(fc.oneof(fc.constant<unknown>(SAME), fc.boolean())),
      region: claimArb(fc.oneof(fc.constant<unknown>(SAME), fc.string({ maxLength: 4 }))),
      unbound: claimArb(fc.string({ maxLength: 4 })),
    },
    { requiredKeys: [] },
  ),
});

interface BuiltHeader {
  field: string;
  raw: string | string[];
  /** True when this header's value cannot be the body's (or is not decodable). */
  disagrees: boolean;
}

function buildHeader(field: string, claim: Claim, bodyValue: unknown, base64 = true): BuiltHeader | null {
  if (claim.mode === "absent") return null;
  if (claim.mode === "invalid") return { field, raw: "=?base64?!!not base64?=", disagrees: true };
  const value = claim.value === SAME ? bodyValue : claim.value;
  const text = claimText(value, base64 && claim.base64);
  if (text === null) return null;
  const same =
    typeof value === typeof bodyValue && (value === bodyValue || Object.is(Number(value), Number(bodyValue)));
  return {
    field,
    raw: claim.twice ? [text, text] : text,
    disagrees: claim.twice || !same,
  };
}

// ---------------------------------------------------------------------------------------
// Principals for the policy stage: the key the Keyring authenticated, or an OAuth / anonymous
// caller (authenticate() turns a verified token into the same Principal shape).
// ---------------------------------------------------------------------------------------

type Caller =
  | { kind: "key"; credential: Credential }
  | { kind: "oauth"; principal: Principal }
  | { kind: "anonymous" };

const oauthPrincipalArb = (env: Env): fc.Arbitrary<Principal> =>
  fc
    .record({
      kind: fc.constantFrom<"user" | "service">("user", "service"),
      scopes: fc.subarray([
        "mcp",
        "mcp:tools",
        "mcp:tools:write",
        "mcp:tools:read",
        "MCP",
        "mcp:tools:write ",
        "other",
      ]),
      expires: fc.boolean(),
    })
    .map(({ kind, scopes, expires }) => ({
      id: "oauth:https://idp.example#alice",
      kind,
      method: "oauth" as const,
      name: "alice",
      environment: env,
      credentialId: "jti-1",
      scopes: { allServers: true, servers: new Map(), source: ["*"] },
      oauthScopes: new Set(scopes),
      groups: [],
      issuedAt: new Date(Date.now() - 60_000),
      expiresAt: expires ? new Date(Date.now() + 3_600_000) : null,
    }));

const inputArb = fc.constantFrom<Env>("dev", "prod").chain((env) =>
  fc.record({
    env: fc.constant(env),
    caller: fc.oneof(
      { weight: 2, arbitrary: credentialArb(env).map((credential): Caller => ({ kind: "key", credential })) },
      {
        weight: 2,
        arbitrary: oauthPrincipalArb(env).map((principal): Caller => ({ kind: "oauth", principal })),
      },
      { weight: 1, arbitrary: fc.constant<Caller>({ kind: "anonymous" }) },
    ),
    body: bodyArb,
    wrapping: wrappingArb,
    headers: headersArb,
  }),
);

// ---------------------------------------------------------------------------------------
// The parts around the pipeline: an upstream that answers and remembers what it was sent,
// an OAuth verifier that presents the generated principal, and a response that keeps the
// reply written to it.
// ---------------------------------------------------------------------------------------

class FuzzUpstream implements Upstream {
  readonly name = SERVER;
  last: PostExchange | null = null;
  /** What the last forwarded request carried, once (null when nothing was forwarded). */
  take(): PostExchange | null {
    const x = this.last;
    this.last = null;
    return x;
  }
  async post(x: PostExchange): Promise<void> {
    this.last = x;
    if (x.msg.kind !== "request") {
      x.res.writeHead(202).end();
      return;
    }
    const body = JSON.stringify({ jsonrpc: "2.0", id: x.msg.id, result: {} });
    x.res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    x.res.end(body);
  }
  async get(x: StreamExchange): Promise<void> {
    x.res.writeHead(405).end();
  }
  async delete(x: StreamExchange): Promise<void> {
    x.res.writeHead(405).end();
  }
  processes(): number {
    return 0;
  }
  async close(): Promise<void> {}
}

const OAUTH_TOKEN = "fuzz-oauth-access-token";

class FuzzTokenVerifier implements AccessTokenVerifier {
  current: Principal | null = null;
  verify(token: string): TokenCheck {
    if (token !== OAUTH_TOKEN || this.current === null)
      return { ok: false, reason: "unknown token", credentialId: null };
    return { ok: true, principal: this.current };
  }
}

interface Written {
  status: number;
  json: {
    jsonrpc?: unknown;
    id?: unknown;
    error?: { code?: unknown; message?: unknown; data?: { decisionId?: unknown } };
  } | null;
}

/** A response with no socket that keeps what the pipeline writes and closes once it ends. */
function response(): { res: ServerResponse; written(): Written } {
  const res = new ServerResponse(new IncomingMessage(new Socket()));
  let text = "";
  const end = res.end.bind(res);
  res.end = ((chunk?: unknown) => {
    if (typeof chunk === "string") text += chunk;
    end();
    res.emit("close");
    return res;
  }) as ServerResponse["end"];
  return {
    res,
    written: () => ({ status: res.statusCode, json: text ? (JSON.parse(text) as Written["json"]) : null }),
  };
}

// ---------------------------------------------------------------------------------------
// One input through the pipeline.
// ---------------------------------------------------------------------------------------

const reasons = new Map<string, number>();
const stats = {
  inputs: 0,
  refusedAuthn: 0,
  refusedClassify: 0,
  refusedHeaders: 0,
  decided: { allow: 0, review: 0, deny: 0 },
};

function tally(reason: string): void {
  const r = reason.replace(/'[^']*'/g, "'…'").slice(0, 60);
  reasons.set(r, (reasons.get(r) ?? 0) + 1);
}

/**
 * A refusal on the wire: a JSON-RPC error echoing the request's id, with a 4xx status or, for
 * an authorization refusal of a request, as the request's answer (200).
 */
function checkRefusal(w: Written, id: JsonRpcId, where: string): void {
  assert.ok(
    (w.status >= 400 && w.status < 500) || (w.status === 200 && w.json?.error !== undefined),
    `${where}: status ${w.status} for client input`,
  );
  assert.ok(w.json !== null, `${where}: a JSON body`);
  assert.equal(w.json.jsonrpc, "2.0");
  assert.equal(typeof w.json.error?.code, "number");
  assert.equal(typeof w.json.error?.message, "string");
  // The id as JSON carries it (-0 is written as 0).
  assert.deepEqual(
    w.json.id,
    JSON.parse(JSON.stringify(id)),
    `${where}: the error must echo the request's id`,
  );
}

function valueAt(args: unknown, path: readonly string[]): unknown {
  let v = args;
  for (const key of path) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

const PARAM_PATHS: Record<string, readonly string[]> = {
  repo: ["repo"],
  count: ["count"],
  force: ["force"],
  region: ["where", "region"],
};

async function runOne(input: {
  env: Env;
  caller: Caller;
  body: Body;
  wrapping: Wrapping;
  headers: Headers;
}): Promise<void> {
  stats.inputs++;
  const { env } = input;
  const text = bodyText(input.body, input.wrapping);
  const id = expectedId(text);

  // The caller: an API key (as presented), an OAuth token, or nobody on the anonymous route.
  const headers: IncomingHttpHeaders = { "content-type": "application/json" };
  let server = SERVER;
  if (input.caller.kind === "key") {
    const { authorization } = input.caller.credential;
    if (authorization !== undefined) headers.authorization = authorization as string;
  } else if (input.caller.kind === "oauth") {
    state.verifier.current = input.caller.principal;
    headers.authorization = `Bearer ${OAUTH_TOKEN}`;
  } else {
    server = ANON;
  }

  // Mirrored and parameter headers, generated to agree or disagree with the body as a client
  // would classify it (a body that does not classify gets none).
  let msg: ClassifiedMessage | null = null;
  try {
    msg = classifyMessage(text);
  } catch {
    msg = null;
  }
  const built: BuiltHeader[] = [];
  let checked = false;
  let args: unknown;
  if (msg !== null) {
    const add = (h: BuiltHeader | null) => h && built.push(h);
    // Mcp-Method values are method names (§"Value Encoding" applies to Mcp-Name and params).
    add(buildHeader("mcp-method", input.headers.method, msg.method, false));
    add(buildHeader("mcp-name", input.headers.name, msg.name));
    const nameHeader = built.find((h) => h.field === "mcp-name");
    if (nameHeader && msg.name === null) nameHeader.disagrees = true;
    const methodHeader = built.find((h) => h.field === "mcp-method");
    if (methodHeader && typeof methodHeader.raw === "string" && methodHeader.raw.startsWith("=?base64?")) {
      methodHeader.disagrees = true; // Mcp-Method is compared as sent, never decoded
    }
    const params = msg.message.params as Record<string, unknown> | undefined;
    args = params !== null && typeof params === "object" ? params.arguments : undefined;
    checked = msg.kind !== "response" && msg.method === "tools/call" && msg.name === HEADER_TOOL;
    for (const [param, claim] of Object.entries(input.headers.params)) {
      const path = PARAM_PATHS[param];
      const h = buildHeader(`mcp-param-${param}`, claim, path ? valueAt(args, path) : undefined);
      if (h) built.push({ ...h, disagrees: h.disagrees && checked && path !== undefined });
    }
    for (const h of built) headers[h.field] = h.raw as string;
    const version =
      input.headers.version === SAME ? (msg.metaProtocolVersion ?? undefined) : input.headers.version;
    if (version !== undefined) headers["mcp-protocol-version"] = version;
  }
  const mirroredDisagree =
    msg !== null &&
    msg.kind !== "response" &&
    built.some((h) => h.disagrees && !h.field.startsWith("mcp-param-"));
  const paramDisagree = built.some((h) => h.disagrees && h.field.startsWith("mcp-param-"));

  // The request, through the real pipeline.
  state.upstream.take();
  state.audit.records.length = 0;
  const { res, written } = response();
  await state.pipelines[env].handle("POST", server, headers, text, "10.0.0.1", res);
  const w = written();
  const forwarded = state.upstream.take();
  assert.equal(state.audit.records.length, 1, "every input leaves exactly one audit record");
  const record = state.audit.records[0] as NonNullable<(typeof state.audit.records)[0]>;
  const refused = w.json?.error !== undefined;
  if (process.env.PORTCULLIS_FUZZ_REASONS && refused) tally(record.reason);
  if (refused) {
    assert.equal(forwarded, null, "a refused request reaches no upstream");
    assert.ok(record.decisionId, "a refusal's record has a decision id");
    assert.equal(w.json?.error?.data?.decisionId, record.decisionId, "the reply names the record's decision");
  }

  // 1. Authentication.
  if (input.caller.kind === "key") {
    const cred = input.caller.credential;
    if (cred.expect === null) {
      assert.equal(w.status, 401, `${cred.label} must not authenticate`);
      assert.equal(record.decision, "deny");
      stats.refusedAuthn++;
      checkRefusal(w, null, "authentication");
      return;
    }
    assert.notEqual(w.status, 401, `${cred.label} must authenticate: ${record.reason}`);
    assert.equal(record.credentialId, cred.expect.id);
    assert.equal(record.method, "api_key");
  }
  const principal: Principal =
    input.caller.kind === "oauth"
      ? input.caller.principal
      : {
          ...anonymousOf(env),
          ...(input.caller.kind === "key"
            ? { method: "api_key" as const, expiresAt: new Date(Date.now() + 1e9) }
            : {}),
        };

  // 2. Classification.
  if (msg === null) {
    stats.refusedClassify++;
    checkRefusal(w, id, "classification");
    return;
  }
  assert.deepEqual(msg.id, id, "the classified id is the body's id");

  // 3. Mirrored and parameter headers (and notifications of request methods): refused before
  //    policy runs, with a 400 (after policy, only an unlisted tool sent to review is a 400).
  const unlistedReview = (record.detail as { event?: string } | null)?.event === "review.unknown_tool";
  if (w.status >= 400 && !unlistedReview) {
    stats.refusedHeaders++;
    checkRefusal(w, id, "headers");
    return;
  }
  assert.equal(
    mirroredDisagree,
    false,
    `a disagreeing Mcp-Method/Mcp-Name passed: ${JSON.stringify(headers)}`,
  );
  assert.equal(paramDisagree, false, `a disagreeing Mcp-Param header passed: ${JSON.stringify(headers)}`);
  if (forwarded !== null) {
    // What goes upstream is rebuilt from the body: it says exactly what the body says.
    const upstream = forwarded.paramHeaders ?? {};
    for (const [field, value] of Object.entries(upstream)) {
      const param = field.slice("mcp-param-".length);
      const path = PARAM_PATHS[param];
      assert.ok(path, `unexpected upstream header ${field}`);
      const body = valueAt(args, path);
      const m = /^=\?base64\?(.*)\?=$/.exec(value);
      const decoded = m ? Buffer.from(m[1] as string, "base64").toString("utf8") : value;
      assert.equal(decoded, String(body), `upstream ${field} says what the body says`);
    }
    if (!checked) {
      assert.deepEqual(upstream, {}, "no Mcp-Param-* header goes upstream for a tool without bindings");
    }
  }
  if (msg.kind !== "request" || msg.method === null) {
    assert.ok(forwarded !== null && !refused, "a notification or response is passed on");
    return;
  }

  // 4. The default pack's decision, against the documented semantics.
  assert.ok(record.decisionId, "policy decided the request");
  const code = w.json?.error?.code;
  const unlisted = (record.detail as { event?: string } | null)?.event === "review.unknown_tool";
  const effect: "allow" | "review" | "deny" =
    forwarded !== null ? "allow" : code === -32041 || unlisted ? "review" : "deny";
  if (forwarded === null) {
    checkRefusal(w, id, "policy");
    if (effect === "deny") assert.equal(code, -32040, `a policy deny answers -32040: ${record.reason}`);
  } else assert.equal(record.decision, "allow");
  stats.decided[effect]++;
  const listed = msg.method === "tools/call" ? TOOL_BY_NAME.get(msg.name as string) : undefined;
  const tool =
    msg.method === "tools/call" ? (listed ?? { tier: "destructive" as const, openWorld: true }) : null;
  if (tool !== null) {
    const facts = state.catalogue.facts(SERVER, msg.name as string);
    assert.equal(facts.tier, tool.tier, `tier of ${JSON.stringify(msg.name)}`);
    assert.equal(facts.openWorld, tool.openWorld, `open-world of ${JSON.stringify(msg.name)}`);
  }
  const expected = oracle(env, principal, msg.method, tool);
  const what = `${env} ${principal.method}/${principal.kind} ${msg.method} ${JSON.stringify(msg.name)} (rules ${(record.ruleIds ?? []).join(",")})`;
  if (effect === "allow") {
    assert.notEqual(
      principal.method === "api_key" && tool !== null && tool.tier !== "read",
      true,
      `API key allowed a ${tool?.tier} tool: ${what}`,
    );
    assert.ok(msg.method !== "tools/call" || listed !== undefined, `unknown tool allowed: ${what}`);
  }
  assert.equal(effect, expected, `decision differs from the documented default pack: ${what}`);
  // A review for a tool the upstream never listed is refused before it costs an approval.
  if (effect === "review") assert.equal(unlisted, listed === undefined, `unlisted-tool refusal for ${what}`);
}

function anonymousOf(env: Env): Principal {
  return {
    id: "anonymous",
    kind: "anonymous",
    method: "anonymous",
    name: "anonymous",
    environment: env,
    credentialId: null,
    scopes: null,
    oauthScopes: null,
    groups: [],
    issuedAt: null,
    expiresAt: null,
  };
}

// ---------------------------------------------------------------------------------------

describe("pipeline core fuzz: the real pipeline, authn → classify → headers → default-pack decision", () => {
  before(async () => {
    state.dir = await mkdtemp(join(tmpdir(), "portcullis-core-fuzz-"));
    state.store = await openStore(join(state.dir, "store.db"));
    const secret = Buffer.from("core-fuzz-server-secret-0123456789abcdef", "utf8");
    state.keys = [];
    for (const env of ["dev", "prod"] as const) {
      const config = parseConfig({ environment: env, dataDir: state.dir }, "core fuzz");
      for (const s of ["live", "revoked", "expired"] as const) {
        const { record, key } = await issueKey(state.store, secret, config, {
          name: `${env}-${s}`,
          scopes: [SERVER],
          expires: "30d",
        });
        if (s === "revoked") await state.store.revokeKey(record.id, new Date(Date.now() - 1000));
        if (s === "expired") await state.store.setKeyExpiry(record.id, new Date(Date.now() - 1000));
        state.keys.push({ env, state: s, id: record.id, key });
      }
    }
    state.keyrings = {
      dev: new Keyring(state.store, secret, "dev"),
      prod: new Keyring(state.store, secret, "prod"),
    };
    await state.keyrings.dev.start();
    await state.keyrings.prod.start();
    state.policy = loadPolicyFiles([DEFAULT_POLICY_PACK]);
    state.catalogue = await ToolCatalogue.open(state.store);
    // The upstream's tools/list, seen as the pipeline sees a relayed one.
    const listing = TOOLS.map((t) => ({
      name: t.name,
      inputSchema: t.name === HEADER_TOOL ? WRITE_SCHEMA : { type: "object" },
      ...(t.annotations !== undefined ? { annotations: t.annotations } : {}),
    }));
    state.listed = new ListedTools();
    for (const server of [SERVER, ANON]) {
      state.catalogue.observe(server, listing);
      state.listed.observe(server, listing);
    }
    state.audit = new RecordingAudit();
    state.upstream = new FuzzUpstream();
    state.verifier = new FuzzTokenVerifier();
    const route = (anonymous: boolean): Route => ({
      upstream: state.upstream,
      anonymous,
      scopes: [],
      toolScopes: {},
    });
    const pipeline = (env: Env) =>
      new Pipeline({
        environment: env,
        bearers: { task: null, jwtSvid: null },
        routes: new Map([
          [SERVER, route(false)],
          [ANON, route(true)],
        ]),
        authorization: {
          policy: () => state.policy,
          tools: state.catalogue,
          observeTools: () => {},
          blocked: () => false,
        },
        keyring: state.keyrings[env],
        audit: state.audit,
        metrics: createMetrics([SERVER, ANON]),
        log: pino({ level: process.env.FUZZ_LOG ?? "silent" }),
        oauth: { verifier: state.verifier, authorizationServers: [], server: null },
        oauthEnabled: false,
        baseUrl: () => "https://gw.example",
        hostCheck: () => null,
        limits: new CallerLimits({
          callsInFlightPerCaller: 4,
          streamsPerCaller: 4,
          streamsPerSession: 4,
          retryAfterSeconds: 1,
        }),
        listedTools: state.listed,
        review: null,
      });
    state.pipelines = { dev: pipeline("dev"), prod: pipeline("prod") };
  });

  after(async () => {
    await state.catalogue?.close();
    await state.keyrings?.dev.close();
    await state.keyrings?.prod.close();
    await state.store?.close();
    if (state.dir) await rm(state.dir, { recursive: true, force: true });
  });

  it("every input is refused with a 4xx JSON-RPC error or decided as the documented default pack decides", async () => {
    const started = performance.now();
    const seed = SEED ?? Date.now() ^ (Math.random() * 0x100000000);
    const details = await fc.check(fc.asyncProperty(inputArb, runOne), { numRuns: RUNS, seed });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `pipeline-core-fuzz: ${details.numRuns} inputs, seed ${seed}, ${seconds} s, ${details.failed ? "FAILED" : "passed"}; ${JSON.stringify(stats)}`,
    );
    if (process.env.PORTCULLIS_FUZZ_REASONS) console.log([...reasons].sort((a, b) => b[1] - a[1]));
    if (details.failed) {
      assert.fail(
        `counterexample after ${details.numRuns} runs (replay: PORTCULLIS_FUZZ_SEED=${seed}, path ${details.counterexamplePath}):\n` +
          `${String(details.errorInstance)}\n${JSON.stringify(details.counterexample, (_, v) => (typeof v === "string" && v.length > 300 ? `${v.slice(0, 300)}…(${v.length})` : typeof v === "symbol" ? String(v) : v)).slice(0, 4000)}`,
      );
    }
    // The run reached every stage and every effect.
    assert.ok(
      stats.refusedAuthn > 0 && stats.refusedClassify > 0 && stats.refusedHeaders > 0,
      JSON.stringify(stats),
    );
    assert.ok(
      stats.decided.allow > 0 && stats.decided.review > 0 && stats.decided.deny > 0,
      JSON.stringify(stats),
    );
  });
});
