/**
 * Tool pinning: what the gateway knows about every tool a server has listed.
 *
 * Every `tools/list` result that passes through is observed. The first definition seen of
 * a tool (name, title, description, inputSchema, outputSchema, annotations — MCP spec
 * 2025-06-18+, server/tools "Tool") is pinned by the SHA-256 of its canonical JSON. When a
 * server later serves a different definition — the "rug pull" where a trusted tool turns
 * malicious after approval — the tool is marked `changed` until an operator accepts the new
 * definition (`portcullis tools accept`); in `block` mode it may not be called meanwhile.
 *
 * The request path reads only memory: `facts()` and `blocked()` are map lookups returning
 * precomputed values. Writes to the store are queued and flushed in batches off the request
 * path. Acceptance by another process (the CLI, another replica) arrives through the store's
 * change feed (`Store.watchKeys`), after which the pins are reloaded.
 */
import { nextPinState, type PinState } from "../store/toolPins.js";
import type { KeyWatch, Store, ToolDefinition, ToolPinRecord, ToolSighting } from "../store/types.js";
import type { RiskTier } from "./policy/types.js";
import { riskTierOf, stricterTier, type TierPin, type ToolRisk } from "./riskTier.js";
import {
  changedFields,
  type FieldMap,
  fieldsOfRecord,
  hashToolDefinition,
  isObject,
  type PinnedField,
} from "./toolDefinition.js";

/** `flag`: a changed tool is reported (audit); `block`: it is also refused until accepted. */
export type PinMode = "flag" | "block";

export type PinStatus = "pinned" | "changed" | "unknown";

/** What policy reads about a tool; immutable and shared, so the request path allocates nothing. */
export interface ToolFacts {
  readonly tier: RiskTier;
  readonly openWorld: boolean;
  /** The annotations the server serves now ({} when it sent none or the tool is unknown). */
  readonly annotations: Readonly<Record<string, unknown>>;
  readonly pinStatus: PinStatus;
  /** `default`: an unknown tool without an operator pin is treated as destructive and open-world. */
  readonly tierSource: "annotations" | "operator" | "default";
}

/** A server changed a tool's definition after it was pinned: for the audit log. */
export interface ToolChange {
  server: string;
  tool: string;
  /** The accepted definition. */
  pinnedHash: string;
  /** What the server served before this observation, and what it serves now. */
  previousHash: string;
  currentHash: string;
  /** Fields of the current definition that differ from the pinned one. */
  fields: PinnedField[];
  at: Date;
  /** True when the tool is refused until accepted (mode `block`). */
  blocked: boolean;
}

export interface ObserveResult {
  /** Tools whose definition changed with this list (already pinned ones only). */
  changed: ToolChange[];
  /** Tools seen for the first time, now pinned. */
  added: string[];
  /** Entries that could not be pinned: not an object, no string name, or over maxToolsPerServer. */
  ignored: number;
}

export interface ToolCatalogueOptions {
  /** Default `flag`. */
  onChange?: PinMode;
  /** Operator pins: server → tool → tier (config `servers.<name>.tools`). They win over annotations. */
  operatorTiers?: Readonly<Record<string, Readonly<Record<string, TierPin>>>>;
  /** How long sightings wait to be written together. Default 50 ms. */
  flushDelayMs?: number;
  /** How often the change feed is polled (SQLite; PostgreSQL pushes). Default 250 ms. */
  pollIntervalMs?: number;
  /** New tools beyond this many per server are not pinned (stay unknown: destructive). Default 10 000. */
  maxToolsPerServer?: number;
  /**
   * Changes found only when writing to the shared store: another process had pinned a
   * different definition first. observe() reports the others.
   */
  onStoreChange?: (changes: ToolChange[]) => void;
  /** A store write or reload failed (retried with backoff). */
  onError?: (err: unknown) => void;
  now?: () => Date;
}

interface Entry {
  state: PinState;
  pinnedFields: FieldMap;
  currentFields: FieldMap;
  pinnedAnnotations: Readonly<Record<string, unknown>>;
  currentAnnotations: Readonly<Record<string, unknown>>;
  facts: ToolFacts;
  blocked: boolean;
  /** JSON.stringify of the raw tool last observed and its hash: skips re-hashing an unchanged list. */
  raw?: string;
  rawHash?: string;
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

function frozenAnnotations(fields: FieldMap): Readonly<Record<string, unknown>> {
  const json = fields.annotations;
  if (json === undefined) return EMPTY;
  const value: unknown = JSON.parse(json);
  return isObject(value) ? Object.freeze(value) : EMPTY;
}

export class ToolCatalogue {
  readonly mode: PinMode;
  private servers = new Map<string, Map<string, Entry>>();
  private readonly operator = new Map<string, Map<string, TierPin>>();
  /** Facts of tools never listed, per operator pin (the rest share UNKNOWN). */
  private readonly unknownPinned = new Map<string, Map<string, ToolFacts>>();
  private readonly flushDelayMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxToolsPerServer: number;
  private readonly now: () => Date;

  /** Sightings not yet written, and those being written. */
  private pending: ToolSighting[] = [];
  /** The state observe() reported for each pending sighting (see flush). */
  private readonly reported = new Map<string, PinState>();
  private inflight: ToolSighting[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private retryMs = 0;
  /** Store reads and writes run one at a time, in order. */
  private io: Promise<void> = Promise.resolve();
  private reloadQueued = false;
  /** `revisions.tool_pins` when the pins were last loaded. */
  private loadedRevision = -1;
  private watch: KeyWatch | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private static readonly UNKNOWN: ToolFacts = Object.freeze({
    tier: "destructive",
    openWorld: true,
    annotations: EMPTY,
    pinStatus: "unknown",
    tierSource: "default",
  });

  constructor(
    private readonly store: Store,
    private readonly opts: ToolCatalogueOptions = {},
  ) {
    this.mode = opts.onChange ?? "flag";
    this.flushDelayMs = opts.flushDelayMs ?? 50;
    this.pollIntervalMs = opts.pollIntervalMs ?? 250;
    this.maxToolsPerServer = opts.maxToolsPerServer ?? 10_000;
    this.now = opts.now ?? (() => new Date());
    for (const [server, tools] of Object.entries(opts.operatorTiers ?? {})) {
      const pins = new Map<string, TierPin>();
      const facts = new Map<string, ToolFacts>();
      for (const [tool, pin] of Object.entries(tools)) {
        pins.set(tool, pin);
        const risk = riskTierOf(EMPTY, pin);
        facts.set(
          tool,
          Object.freeze({
            tier: risk.tier,
            openWorld: risk.openWorld,
            annotations: EMPTY,
            pinStatus: "unknown",
            tierSource: "operator",
          }),
        );
      }
      this.operator.set(server, pins);
      this.unknownPinned.set(server, facts);
    }
  }

  /** A catalogue loaded from the store and following its change feed. */
  static async open(store: Store, opts: ToolCatalogueOptions = {}): Promise<ToolCatalogue> {
    const catalogue = new ToolCatalogue(store, opts);
    await catalogue.start();
    return catalogue;
  }

  /** Loads the persisted pins and starts following the change feed. */
  async start(): Promise<void> {
    // Watch first, so nothing committed between the load and the watch is missed.
    this.watch = this.store.watchKeys(() => this.scheduleReload());
    this.pollTimer = setInterval(() => this.poll(), this.pollIntervalMs);
    this.pollTimer.unref();
    await this.load();
  }

  /** Reads the revision first: a write that lands between the two reads only causes one more reload. */
  private async load(): Promise<void> {
    const revision = await this.store.toolPinsRevision();
    this.replaceAll(await this.store.listToolPins());
    this.loadedRevision = revision;
  }

  /** Checks the change feed now (SQLite; a no-op on PostgreSQL). Also runs on a timer. */
  poll(): void {
    try {
      this.watch?.poll();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  /** False while the change feed is down (PostgreSQL listener lost): acceptances may be missed. */
  healthy(): boolean {
    return this.watch?.healthy() ?? false;
  }

  /** What policy reads about a tool. Memory only. */
  facts(server: string, tool: string): ToolFacts {
    return (
      this.servers.get(server)?.get(tool)?.facts ??
      this.unknownPinned.get(server)?.get(tool) ??
      ToolCatalogue.UNKNOWN
    );
  }

  /** True while a changed tool waits for acceptance and the mode is `block`. Memory only. */
  blocked(server: string, tool: string): boolean {
    return this.servers.get(server)?.get(tool)?.blocked === true;
  }

  /** Sees the `tools` of one tools/list result (one page) of `server`. */
  observe(server: string, tools: readonly unknown[]): ObserveResult {
    const result: ObserveResult = { changed: [], added: [], ignored: 0 };
    if (!Array.isArray(tools)) return result;
    let entries = this.servers.get(server);
    if (entries === undefined) {
      entries = new Map();
      this.servers.set(server, entries);
    }
    const at = this.now();
    for (const tool of tools) {
      const name = isObject(tool) ? tool.name : undefined;
      if (typeof name !== "string" || name === "") {
        result.ignored++;
        continue;
      }
      const entry = entries.get(name);
      if (entry === undefined && entries.size >= this.maxToolsPerServer) {
        result.ignored++;
        continue;
      }
      let raw: string | undefined;
      try {
        raw = JSON.stringify(tool);
      } catch {
        raw = undefined;
      }
      if (entry !== undefined && raw !== undefined && raw === entry.raw) {
        if (nextPinState(entry.state, entry.rawHash as string) === null) continue;
      }
      const hashed = hashToolDefinition(tool);
      if (hashed === null) {
        result.ignored++;
        continue;
      }
      const next = nextPinState(entry?.state, hashed.hash);
      if (entry !== undefined) {
        entry.raw = raw;
        entry.rawHash = hashed.hash;
      }
      if (next === null) continue;
      this.pending.push({ server, tool: name, hash: hashed.hash, definition: hashed.canonical, at });
      // What this observation told its caller: a reload before the flush must not hide a
      // change the store then reports (another replica pinned first).
      this.reported.set(JSON.stringify([server, name]), next);
      if (entry === undefined) {
        const created = this.entry(server, name, next, hashed.fields, hashed.fields);
        created.raw = raw;
        created.rawHash = hashed.hash;
        entries.set(name, created);
        result.added.push(name);
        continue;
      }
      const change = this.change(server, name, entry, next, hashed.fields, at);
      entries.set(name, {
        ...this.entry(server, name, next, entry.pinnedFields, hashed.fields),
        raw,
        rawHash: hashed.hash,
      });
      result.changed.push(change);
    }
    if (this.pending.length > 0) this.scheduleFlush(this.flushDelayMs);
    return result;
  }

  /** Writes pending sightings, stops following the feed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.flushTimer = null;
    this.pollTimer = null;
    await this.enqueue(() => this.flush()).catch(() => {});
    await this.watch?.close();
    this.watch = null;
  }

  /** Resolves once everything observed so far is written (tests, shutdown). */
  async settled(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    await this.enqueue(() => this.flush());
  }

  private change(
    server: string,
    tool: string,
    entry: Entry,
    next: PinState,
    currentFields: FieldMap,
    at: Date,
  ): ToolChange {
    return {
      server,
      tool,
      pinnedHash: next.pinnedHash,
      previousHash: entry.state.currentHash,
      currentHash: next.currentHash,
      fields: changedFields(entry.pinnedFields, currentFields),
      at,
      blocked: this.mode === "block" && next.status === "changed",
    };
  }

  private entry(server: string, tool: string, state: PinState, pinned: FieldMap, current: FieldMap): Entry {
    const pinnedAnnotations = frozenAnnotations(pinned);
    const currentAnnotations = current === pinned ? pinnedAnnotations : frozenAnnotations(current);
    const risk = pinnedToolRisk(
      state.status,
      pinnedAnnotations,
      currentAnnotations,
      this.operator.get(server)?.get(tool),
    );
    const facts: ToolFacts = Object.freeze({
      tier: risk.tier,
      openWorld: risk.openWorld,
      annotations: currentAnnotations,
      pinStatus: state.status,
      tierSource: risk.source,
    });
    return {
      state,
      pinnedFields: pinned,
      currentFields: current,
      pinnedAnnotations,
      currentAnnotations,
      facts,
      blocked: this.mode === "block" && state.status === "changed",
    };
  }

  private entryFromRecord(r: ToolPinRecord, previous: Entry | undefined): Entry {
    const state: PinState = { status: r.status, pinnedHash: r.pinnedHash, currentHash: r.currentHash };
    const pinned =
      previous?.state.pinnedHash === r.pinnedHash
        ? previous.pinnedFields
        : fieldsOfRecord(r.pinnedDefinition);
    const current =
      r.currentHash === r.pinnedHash
        ? pinned
        : previous?.state.currentHash === r.currentHash
          ? previous.currentFields
          : fieldsOfRecord(r.currentDefinition);
    const e = this.entry(r.server, r.tool, state, pinned, current);
    if (previous?.raw !== undefined) {
      e.raw = previous.raw;
      e.rawHash = previous.rawHash;
    }
    return e;
  }

  /** Replaces memory with the store's pins, then re-applies what is not written yet. */
  private replaceAll(records: ToolPinRecord[]): void {
    const next = new Map<string, Map<string, Entry>>();
    for (const r of records) {
      let tools = next.get(r.server);
      if (tools === undefined) {
        tools = new Map();
        next.set(r.server, tools);
      }
      tools.set(r.tool, this.entryFromRecord(r, this.servers.get(r.server)?.get(r.tool)));
    }
    const old = this.servers;
    this.servers = next;
    this.reapply([...this.inflight, ...this.pending], old);
  }

  /** Applies records returned by a write; reports changes memory did not expect. */
  private merge(records: ToolPinRecord[], expected: Map<string, PinState | undefined>): ToolChange[] {
    const late: ToolChange[] = [];
    for (const r of records) {
      let tools = this.servers.get(r.server);
      if (tools === undefined) {
        tools = new Map();
        this.servers.set(r.server, tools);
      }
      const previous = tools.get(r.tool);
      const entry = this.entryFromRecord(r, previous);
      const believed = expected.get(JSON.stringify([r.server, r.tool]));
      if (
        r.status === "changed" &&
        (believed === undefined ||
          believed.status !== "changed" ||
          believed.currentHash !== r.currentHash ||
          believed.pinnedHash !== r.pinnedHash)
      ) {
        late.push({
          server: r.server,
          tool: r.tool,
          pinnedHash: r.pinnedHash,
          previousHash: believed?.currentHash ?? r.pinnedHash,
          currentHash: r.currentHash,
          fields: changedFields(entry.pinnedFields, entry.currentFields),
          at: r.changedAt ?? this.now(),
          blocked: entry.blocked,
        });
      }
      tools.set(r.tool, entry);
    }
    return late;
  }

  /** Sightings not yet in the store, applied again on top of what it returned. */
  private reapply(sightings: ToolSighting[], previous: Map<string, Map<string, Entry>>): void {
    for (const s of sightings) {
      let tools = this.servers.get(s.server);
      if (tools === undefined) {
        tools = new Map();
        this.servers.set(s.server, tools);
      }
      const entry = tools.get(s.tool);
      const next = nextPinState(entry?.state, s.hash);
      if (next === null) continue;
      const fields = fieldsOfRecord(JSON.parse(s.definition) as ToolDefinition);
      const e = this.entry(s.server, s.tool, next, entry?.pinnedFields ?? fields, fields);
      const old = entry ?? previous.get(s.server)?.get(s.tool);
      if (old?.raw !== undefined) {
        e.raw = old.raw;
        e.rawHash = old.rawHash;
      }
      tools.set(s.tool, e);
    }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.io.then(task);
    this.io = run.catch(() => {});
    return run;
  }

  private scheduleFlush(delay: number): void {
    if (this.flushTimer !== null || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.enqueue(() => this.flush()).catch(() => {});
    }, delay);
    this.flushTimer.unref();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    this.inflight = this.pending;
    this.pending = [];
    // What memory already believes about these tools: only what the store adds is news.
    const expected = new Map<string, PinState | undefined>();
    for (const s of this.inflight) {
      const key = JSON.stringify([s.server, s.tool]);
      expected.set(key, this.reported.get(key) ?? this.servers.get(s.server)?.get(s.tool)?.state);
    }
    let records: ToolPinRecord[];
    try {
      records = await this.store.recordToolSightings(this.inflight);
    } catch (err) {
      this.pending = [...this.inflight, ...this.pending];
      this.inflight = [];
      this.opts.onError?.(err);
      this.retryMs = Math.min(Math.max(this.retryMs * 2, RETRY_MIN_MS), RETRY_MAX_MS);
      this.scheduleFlush(this.retryMs);
      throw err;
    }
    for (const key of expected.keys()) this.reported.delete(key);
    this.inflight = [];
    this.retryMs = 0;
    const late = this.merge(records, expected);
    this.reapply(this.pending, this.servers);
    if (late.length > 0) this.opts.onStoreChange?.(late);
  }

  private scheduleReload(): void {
    if (this.reloadQueued || this.closed) return;
    this.reloadQueued = true;
    void this.enqueue(async () => {
      this.reloadQueued = false;
      try {
        // The feed also carries key and grant changes: reload only when a tool-pin write happened.
        if ((await this.store.toolPinsRevision()) === this.loadedRevision) return;
        await this.load();
      } catch (err) {
        this.opts.onError?.(err);
        // Try again shortly: an acceptance must not be lost to one failed read.
        setTimeout(() => this.scheduleReload(), RETRY_MIN_MS).unref();
      }
    });
  }
}

/**
 * The tier of a pinned tool. While it is `changed`, a change never lowers the tier: the
 * stricter of the accepted and the served claims (a destructive tool that starts claiming
 * `readOnlyHint` stays destructive until accepted). An operator pin wins.
 */
export function pinnedToolRisk(
  status: "pinned" | "changed",
  pinnedAnnotations: unknown,
  currentAnnotations: unknown,
  pin?: TierPin,
): ToolRisk {
  let risk = riskTierOf(currentAnnotations);
  if (status === "changed") {
    const before = riskTierOf(pinnedAnnotations);
    risk = {
      ...risk,
      tier: stricterTier(risk.tier, before.tier),
      openWorld: risk.openWorld || before.openWorld,
    };
  }
  if (pin === undefined) return risk;
  return { tier: pin.tier, openWorld: pin.openWorld ?? risk.openWorld, source: "operator" };
}

/** The risk of a stored pin (for `portcullis tools list`). */
export function recordRisk(record: ToolPinRecord, pin?: TierPin): ToolRisk {
  return pinnedToolRisk(
    record.status,
    record.pinnedDefinition.annotations,
    record.currentDefinition.annotations,
    pin,
  );
}
