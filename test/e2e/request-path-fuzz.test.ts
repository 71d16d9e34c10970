/**
 * Fuzzing the whole request path: a gateway built in-process (src/gateway.ts, the real
 * listener, SQLite store, audit writer, policy and keyring) in front of a real stdio MCP
 * upstream that writes down every tools/call it runs, driven with generated JSON-RPC messages
 * (single and batch, odd ids, deep and huge params, wrong types), headers (Mcp-Method,
 * Mcp-Name, Mcp-Param-*, protocol versions, content types) and credentials (valid, scoped,
 * tampered, minted for another environment, absent).
 *
 * Invariants, for every input:
 * - never a 5xx for client input (the upstream is healthy and answers at once);
 * - never a call policy (or the key's scope) refuses: every tools/call the upstream ran came
 *   from a valid credential, names a tool that an independent oracle below allows for it, and
 *   carries arguments the client sent in that very request;
 * - never a forwarded write- or destructive-tier call without its committed audit record: the
 *   upstream counts the committed allow records of that tool in the store when the call
 *   arrives, and the k-th such call must see at least k;
 * - the audit writer always drains: nothing stays pending, and a later call is recorded.
 *
 * Budget: PORTCULLIS_FUZZ_RUNS inputs (default 150, the CI budget); run a long budget by hand,
 * e.g. PORTCULLIS_FUZZ_RUNS=1000000 node scripts/run-tests.mjs request-path-fuzz.
 * PORTCULLIS_FUZZ_SEED replays a reported failure.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { pino } from "pino";
import { stringify } from "yaml";
import { issueKey } from "../../src/authn/keyLifecycle.js";
import { type LoadedConfig, loadConfig } from "../../src/config/load.js";
import { type Gateway, startGateway } from "../../src/gateway.js";
import type { ToolFile } from "../fixtures/mutable-tool-server.js";
import { auditRecords } from "../helpers/audit.js";
import { UpstreamCallLog } from "../helpers/callLog.js";
import { cleanup, tempDir } from "../helpers/gateway.js";
import { waitFor } from "../helpers/wait.js";

const RUNS = Number(process.env.PORTCULLIS_FUZZ_RUNS ?? 150);
const SEED =
  process.env.PORTCULLIS_FUZZ_SEED === undefined ? undefined : Number(process.env.PORTCULLIS_FUZZ_SEED);
const MUTABLE_SERVER = join(import.meta.dirname, "../fixtures/mutable-tool-server.js");
const MODERN = "2026-07-28";

const TOOLS: ToolFile = {
  tools: [
    { name: "search_notes", annotations: { readOnlyHint: true, destructiveHint: false } },
    { name: "add_note", annotations: { readOnlyHint: false, destructiveHint: false } },
    { name: "update_note", annotations: { readOnlyHint: false, destructiveHint: false } },
    { name: "delete_note", annotations: { readOnlyHint: false, destructiveHint: true } },
    { name: "reset_notebook", annotations: { readOnlyHint: false, destructiveHint: true } },
  ],
};
const POLICY = {
  rules: [
    { id: "allow-everything", effect: "allow" },
    { id: "never-delete", effect: "deny", match: { tools: ["delete_note"] } },
    { id: "reset-needs-review", effect: "review", match: { tools: ["reset_notebook"] } },
  ],
};

// ── The oracle: written from the policy above and the keys' scopes, not from the engine ──────
/** Tools whose calls must never reach the upstream, whoever asks (deny, and review never decided). */
const NEVER_RUN = new Set(["delete_note", "reset_notebook"]);
/** The tools the scoped key may call. */
const SCOPED_TOOLS = new Set(["search_notes"]);
/** Every tool but the listed read-tier one is recorded durably (unknown tools count as destructive). */
const isReadTier = (tool: string) => tool === "search_notes";

type Credential = "full" | "scoped" | "tampered" | "otherEnvironment" | "absent" | "garbage" | "basic";

function mayRun(credential: Credential, tool: string): boolean {
  if (credential !== "full" && credential !== "scoped") return false;
  if (NEVER_RUN.has(tool)) return false;
  return credential === "full" || SCOPED_TOOLS.has(tool);
}

/** The tools/call messages of a request body as the client sent them (any shape). */
function callsIn(body: unknown): Array<{ name: string; arguments: unknown }> {
  const messages = Array.isArray(body) ? body : [body];
  const out: Array<{ name: string; arguments: unknown }> = [];
  for (const m of messages) {
    if (m === null || typeof m !== "object") continue;
    const { method, params } = m as { method?: unknown; params?: unknown };
    if (method !== "tools/call" || params === null || typeof params !== "object") continue;
    const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
    if (typeof name === "string") out.push({ name, arguments: args ?? {} });
  }
  return out;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ── Generators ───────────────────────────────────────────────────────────────────────────────
const toolName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TOOLS.tools.map((t) => t.name)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "DELETE_NOTE",
      "delete_note ",
      "delete_note\u200b",
      "delete\u2010note",
      "ｄelete_note",
      "search_notes/../delete_note",
      "",
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/**
 * Arguments `{ "deep": [[[…"leaf"…]]] }` nested `depth` arrays deep. Written into the body as
 * text at send time: JSON.stringify itself overflows the stack beyond a few thousand levels,
 * and fast-check prints it by its depth.
 */
class DeepArgs {
  constructor(readonly depth: number) {}
  get token(): string {
    return `__portcullis_fuzz_deep_${this.depth}__`;
  }
  text(): string {
    return `{"deep":${"[".repeat(this.depth)}"leaf"${"]".repeat(this.depth)}}`;
  }
  [fc.toStringMethod](): string {
    return `DeepArgs(${this.depth})`;
  }
}

/** The request body as bytes: JSON, with every DeepArgs written out as its text. */
function serialise(payload: unknown): string {
  const deep = new Map<string, DeepArgs>();
  const json =
    JSON.stringify(payload, (_k, v: unknown) => {
      if (!(v instanceof DeepArgs)) return v;
      deep.set(v.token, v);
      return v.token;
    }) ?? "";
  let out = json;
  for (const [token, d] of deep) out = out.replaceAll(`"${token}"`, d.text());
  return out;
}

/** The arguments the upstream logged are those sent (a DeepArgs: as sent, or marked unserialisable). */
function sameArguments(sent: unknown, logged: unknown): boolean {
  if (sent instanceof DeepArgs) {
    if (isDeepStrictEqual(logged, { unserialisable: true })) return true;
    try {
      return JSON.stringify(logged) === sent.text();
    } catch {
      return false;
    }
  }
  // As JSON (fast-check makes null-prototype objects; the wire has no prototypes).
  return isDeepStrictEqual(JSON.parse(JSON.stringify(sent) ?? "null"), logged);
}

/**
 * Up to 100,000 levels: this suite found issue 10 item 1 (arguments nested deeper than the
 * canonical-JSON limit wedged the audit writer; DeepArgs(88388) in a completion/complete, seed
 * 1216054974). Such messages are now refused at classification (400, -32600) and recorded.
 */
const MAX_ARGUMENT_DEPTH = 100_000;

const args = fc.oneof(
  { weight: 5, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  // Deeper than the canonical-JSON and redaction limits, and than a recursive parser's stack.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 2, max: MAX_ARGUMENT_DEPTH }).map((depth) => new DeepArgs(depth)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => ({ big: "x".repeat(n) })) },
  { weight: 1, arbitrary: fc.constantFrom({ password: "hunter2" }, { token: "Bearer abc.def.ghi" }) },
);

const id = fc.oneof(
  { weight: 10, arbitrary: fc.integer() },
  fc.string({ maxLength: 12 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.double(),
  fc.constant({ nested: 1 }),
  fc.boolean(),
  fc.constant(Number.MAX_SAFE_INTEGER + 2),
);

const METHODS = [
  "tools/call",
  "tools/list",
  "resources/list",
  "resources/read",
  "prompts/get",
  "ping",
  "initialize",
  "server/discover",
  "notifications/initialized",
  "completion/complete",
];
const method = fc.oneof(
  { weight: 8, arbitrary: fc.constant("tools/call") },
  { weight: 4, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);

const meta = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ "io.modelcontextprotocol/protocolVersion": MODERN }) },
  fc.constant(undefined),
  fc.record({
    "io.modelcontextprotocol/protocolVersion": fc.oneof(fc.string({ maxLength: 12 }), fc.integer()),
  }),
);

const message = fc
  .record(
    {
      jsonrpc: fc.oneof({ weight: 15, arbitrary: fc.constant("2.0") }, fc.constantFrom("1.0", 2, null)),
      id,
      method,
      name: toolName,
      arguments: args,
      meta,
      params: fc.oneof({ weight: 15, arbitrary: fc.constant("shaped") }, fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: ["jsonrpc", "method", "name", "arguments", "params"] },
  )
  .map((m) => {
    const params =
      m.params === "shaped"
        ? {
            name: m.name,
            arguments: m.arguments,
            ...(m.meta === undefined ? {} : { _meta: m.meta }),
          }
        : m.params;
    return {
      jsonrpc: m.jsonrpc,
      ...("id" in m && m.id !== undefined ? { id: m.id } : {}),
      method: m.method,
      params,
    } as Record<string, unknown>;
  });

/** A body sent as these exact bytes, not as JSON.stringify of a value. */
class RawBody {
  constructor(readonly text: string) {}
  toString() {
    return `RawBody(${JSON.stringify(this.text)})`;
  }
}

const body = fc.oneof(
  { weight: 12, arbitrary: message },
  { weight: 2, arbitrary: fc.array(message, { minLength: 0, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.string({ maxLength: 40 }), fc.constantFrom('{"jsonrpc":"2.0",', "[", "[]", "null", "\u0000"))
      .map((s) => new RawBody(s)),
  },
);

/** A header value a client can send (printable ASCII). */
const headerText = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);

const headerChoices = fc.record({
  version: fc.oneof(
    { weight: 30, arbitrary: fc.constant(MODERN) },
    fc.constantFrom("2025-11-25", "2025-06-18", "2024-11-05", undefined),
    headerText,
  ),
  mcpMethod: fc.oneof({ weight: 30, arbitrary: fc.constant("match") }, fc.constant(undefined), headerText),
  mcpName: fc.oneof(
    { weight: 30, arbitrary: fc.constant("match") },
    fc.constant(undefined),
    fc.constant("base64"),
    headerText,
  ),
  mcpParam: fc.option(fc.tuple(fc.stringMatching(/^[A-Za-z]{1,8}$/), headerText), {
    nil: undefined,
    freq: 8,
  }),
  contentType: fc.oneof(
    { weight: 30, arbitrary: fc.constant("application/json") },
    fc.constantFrom(
      "application/json; charset=utf-8",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      undefined,
    ),
  ),
  accept: fc.oneof(
    { weight: 30, arbitrary: fc.constant("application/json, text/event-stream") },
    fc.constantFrom("application/json", "text/event-stream", "*/*", undefined),
  ),
});

const credential = fc.constantFrom<Credential>(
  "full",
  "full",
  "full",
  "full",
  "full",
  "scoped",
  "scoped",
  "tampered",
  "otherEnvironment",
  "absent",
  "garbage",
  "basic",
);

/** A well-formed 2026-07-28 tools/call (only name, arguments and credential vary): the path that forwards. */
const wellFormedCall = fc.record({
  body: fc.record({ id: fc.integer(), name: toolName, arguments: args }).map((c) => ({
    jsonrpc: "2.0",
    id: c.id,
    method: "tools/call",
    params: {
      name: c.name,
      arguments: c.arguments,
      _meta: { "io.modelcontextprotocol/protocolVersion": MODERN },
    },
  })),
  headers: fc.constant({
    version: MODERN,
    mcpMethod: "match",
    mcpName: "match",
    mcpParam: undefined,
    contentType: "application/json",
    accept: "application/json, text/event-stream",
  }),
  credential,
});

const input = fc.oneof(wellFormedCall, fc.record({ body, headers: headerChoices, credential }));
interface Input {
  body: unknown;
  headers: {
    version: string | undefined;
    mcpMethod: string | undefined;
    mcpName: string | undefined;
    mcpParam: [string, string] | undefined;
    contentType: string | undefined;
    accept: string | undefined;
  };
  credential: Credential;
}

describe("request-path fuzz: generated messages, headers and credentials never break the invariants", () => {
  let dir: string;
  let gw: Gateway;
  let loaded: LoadedConfig;
  const calls = { log: null as unknown as UpstreamCallLog };
  const keys: Record<Credential, string | undefined> = {
    full: undefined,
    scoped: undefined,
    tampered: undefined,
    otherEnvironment: undefined,
    absent: undefined,
    garbage: "pcl_test_AAAAAAAAAAAA_notakeyatall",
    basic: undefined,
  };
  /** Forwarded calls per tool so far (the upstream's count, for auditedBefore). */
  const forwarded = new Map<string, number>();
  const logLines: string[] = [];

  before(async () => {
    dir = tempDir("portcullis-fuzz-");
    const toolsFile = join(dir, "tools.json");
    const callsFile = join(dir, "calls.jsonl");
    const policyFile = join(dir, "policy.yaml");
    const configFile = join(dir, "portcullis.yaml");
    writeFileSync(toolsFile, JSON.stringify(TOOLS));
    writeFileSync(policyFile, stringify(POLICY));
    writeFileSync(
      configFile,
      stringify({
        environment: "test",
        dataDir: join(dir, "data"),
        listen: { host: "127.0.0.1", port: 0 },
        policy: { paths: [policyFile] },
        limits: { bodyBytes: 262_144 },
        servers: {
          notes: {
            transport: "stdio",
            command: process.execPath,
            args: [
              MUTABLE_SERVER,
              toolsFile,
              "--calls",
              callsFile,
              "--audit-db",
              join(dir, "data/portcullis.db"),
            ],
          },
        },
      }),
    );
    loaded = loadConfig({ config: configFile });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        if (logLines.length > 2000) logLines.splice(0, 1000);
        done();
      },
    });
    gw = await startGateway(loaded, pino({ level: "info" }, sink));
    calls.log = new UpstreamCallLog(callsFile);
    const issue = async (name: string, extra: { scopes?: string[]; environment?: string } = {}) =>
      (await issueKey(gw.store, gw.secret, loaded.config, { name, ...extra })).key;
    keys.full = await issue("fuzz-full");
    keys.scoped = await issue("fuzz-scoped", { scopes: ["notes:search_notes"] });
    keys.otherEnvironment = await issue("fuzz-prod", { environment: "prod" });
    const full = keys.full;
    keys.tampered = `${full.slice(0, -3)}${full.at(-3) === "A" ? "B" : "A"}${full.slice(-2)}`;
    // Tiers come from tools/list; both keys list once so the gateway knows every tool.
    for (const k of [keys.full, keys.scoped]) {
      const listed = await send(
        { jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: metaModern() } },
        {
          ...modernHeaders("tools/list"),
          authorization: `Bearer ${k}`,
        },
      );
      assert.equal(listed.status, 200, listed.text);
    }
    // Positive control: the same setup records an allowed call upstream, with its audit count.
    await canary("before");
  });
  after(async () => {
    await gw?.close();
    if (dir) cleanup(dir);
  });

  const metaModern = () => ({ "io.modelcontextprotocol/protocolVersion": MODERN });
  const modernHeaders = (m: string): Record<string, string> => ({
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": MODERN,
    "mcp-method": m,
  });

  async function send(
    payload: unknown,
    headers: Record<string, string>,
  ): Promise<{ status: number; text: string }> {
    const res = await fetch(`${gw.url}/mcp/notes`, {
      method: "POST",
      headers,
      body: typeof payload === "string" ? payload : serialise(payload),
    });
    return { status: res.status, text: await res.text() };
  }

  /** An allowed write-tier call: forwarded, counted, and its audit record committed. */
  async function canary(tag: string): Promise<void> {
    const marker = `canary-${tag}-${Math.random().toString(36).slice(2)}`;
    const res = await send(
      {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "add_note", arguments: { marker }, _meta: metaModern() },
      },
      { ...modernHeaders("tools/call"), "mcp-name": "add_note", authorization: `Bearer ${keys.full}` },
    );
    assert.equal(res.status, 200, `canary ${tag}: ${res.text}`);
    checkForwarded(calls.log.fresh(), "full", [{ name: "add_note", arguments: { marker } }]);
    await waitFor(`the canary's audit record (${tag})`, async () =>
      (await auditRecords({ dir }, { tool: "add_note", decision: "allow" })).some((r) =>
        JSON.stringify(r.arguments ?? null).includes(marker),
      ),
    );
  }

  function checkForwarded(
    fresh: ReturnType<UpstreamCallLog["fresh"]>,
    cred: Credential,
    sent: Array<{ name: string; arguments: unknown }>,
  ): void {
    for (const call of fresh) {
      assert.ok(
        mayRun(cred, call.name),
        `the upstream ran ${JSON.stringify(call.name)} for a ${cred} credential`,
      );
      assert.ok(
        sent.some((s) => s.name === call.name && sameArguments(s.arguments, call.arguments)),
        `the upstream ran ${call.name} with arguments the client did not send in this request`,
      );
      const k = (forwarded.get(call.name) ?? 0) + 1;
      forwarded.set(call.name, k);
      if (!isReadTier(call.name)) {
        assert.ok(
          (call.auditedBefore ?? -1) >= k,
          `write-tier call #${k} to ${call.name} reached the upstream with ${call.auditedBefore} committed allow records`,
        );
      }
    }
  }

  async function pendingAudit(): Promise<number> {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const m = /^portcullis_audit_pending_records (\d+)/m.exec(text);
    return Number(m?.[1] ?? Number.NaN);
  }

  function headersFor(i: Input): Record<string, string> {
    const h: Record<string, string> = {};
    const first = (Array.isArray(i.body) ? i.body[0] : i.body) as
      | { method?: unknown; params?: { name?: unknown } }
      | undefined;
    if (i.headers.contentType !== undefined) h["content-type"] = i.headers.contentType;
    if (i.headers.accept !== undefined) h.accept = i.headers.accept;
    if (i.headers.version !== undefined) h["mcp-protocol-version"] = i.headers.version;
    if (i.headers.mcpMethod === "match") {
      if (typeof first?.method === "string" && /^[\x20-\x7e]*$/.test(first.method))
        h["mcp-method"] = first.method;
    } else if (i.headers.mcpMethod !== undefined) h["mcp-method"] = i.headers.mcpMethod;
    const name = first?.params?.name;
    if (i.headers.mcpName === "match" || i.headers.mcpName === "base64") {
      if (typeof name === "string")
        h["mcp-name"] =
          i.headers.mcpName === "match" && /^[\x20-\x7e]*$/.test(name)
            ? name
            : `=?base64?${Buffer.from(name, "utf8").toString("base64")}?=`;
    } else if (i.headers.mcpName !== undefined) h["mcp-name"] = i.headers.mcpName;
    if (i.headers.mcpParam !== undefined) h[`mcp-param-${i.headers.mcpParam[0]}`] = i.headers.mcpParam[1];
    const key = keys[i.credential];
    if (i.credential === "basic") h.authorization = `Basic ${Buffer.from("admin:admin").toString("base64")}`;
    else if (key !== undefined) h.authorization = `Bearer ${key}`;
    return h;
  }

  it("holds every invariant for generated requests", { timeout: Number.POSITIVE_INFINITY }, async () => {
    let runs = 0;
    const outcomes = new Map<string, number>();
    await fc
      .assert(
        fc.asyncProperty(input, async (i) => {
          runs++;
          calls.log.fresh();
          const res = await send(i.body instanceof RawBody ? i.body.text : i.body, headersFor(i));
          assert.ok(res.status < 500, `a ${res.status} for client input: ${res.text.slice(0, 300)}`);
          assert.ok(res.status >= 200, `status ${res.status}`);
          const code = /"code":(-?\d+)/.exec(res.text)?.[1];
          const outcome = `${res.status}${code === undefined ? "" : ` ${code}`}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          checkForwarded(
            calls.log.fresh(),
            i.credential,
            callsIn(i.body instanceof RawBody ? parsed(i.body.text) : i.body),
          );
          await waitFor("the audit writer to drain", async () => (await pendingAudit()) === 0, {
            timeoutMs: 5_000,
          });
        }),
        // One gateway serves every input, so a failure can leave state behind (a wedged audit
        // writer fails every later input): report the first failing input as it was, unshrunk.
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
      )
      .catch((err: unknown) => {
        const problems = logLines.filter((l) => /"level":(40|50|60)/.test(l)).slice(-5);
        throw new Error(
          `${(err as Error).message}\nbroken invariant: ${String(((err as Error).cause as Error | undefined)?.message)}` +
            `\ngateway warnings and errors (last 5):\n${problems.join("")}`,
          {
            cause: err,
          },
        );
      });
    // The writer drained and still records: a later allowed call has its committed record.
    await canary("after");
    console.log(
      `# request-path fuzz: ${runs} inputs, calls the upstream ran ${JSON.stringify([...forwarded])}`,
    );
    const seen = [...outcomes].sort((a, b) => b[1] - a[1]);
    console.log(`# outcomes (status and JSON-RPC code): ${JSON.stringify(seen)}`);
  });
});
