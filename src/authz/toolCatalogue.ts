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
 * precomputed values (./toolFacts.ts). Writes to the store are queued and flushed in batches
 * off the request path. Acceptance by another process (the CLI, another replica) arrives
 * through the store's change feed: the pins are a FeedCache (../store/feedCache.ts) whose
 * reload, when the `tool_pins` revision moved, replaces memory (./toolPinMemory.ts).
 */
import { FeedCache } from "../store/feedCache.js";
import { nextPinState, type PinState } from "../store/toolPins.js";
import type { Store, ToolPinRecord, ToolSighting } from "../store/types.js";
import type { TierPin } from "./riskTier.js";
import { changedFields, type FieldMap, hashToolDefinition, isObject } from "./toolDefinition.js";
import {
  type Entry,
  EntryBuilder,
  type EntryTable,
  operatorFacts,
  type PinMode,
  type ToolChange,
  type ToolFacts,
  UNKNOWN_FACTS,
} from "./toolFacts.js";
import { mergeRecords, pinKey, reapplySightings, tableOfRecords } from "./toolPinMemory.js";

export type { PinMode, PinStatus, ToolChange, ToolFacts } from "./toolFacts.js";
export { pinnedToolRisk, recordRisk } from "./toolFacts.js";

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

const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export class ToolCatalogue {
  readonly mode: PinMode;
  private servers: EntryTable = new Map();
  private readonly build: EntryBuilder;
  /** Facts of tools never listed, per operator pin (the rest share UNKNOWN_FACTS). */
  private readonly unknownPinned = new Map<string, Map<string, ToolFacts>>();
  private readonly flushDelayMs: number;
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
  private io: Promise<unknown> = Promise.resolve();
  /** Follows the change feed; its value is `revisions.tool_pins` when the pins were last loaded. */
  private readonly pins: FeedCache<number>;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly opts: ToolCatalogueOptions = {},
  ) {
    this.mode = opts.onChange ?? "flag";
    this.flushDelayMs = opts.flushDelayMs ?? 50;
    this.maxToolsPerServer = opts.maxToolsPerServer ?? 10_000;
    this.now = opts.now ?? (() => new Date());
    const operator = new Map<string, Map<string, TierPin>>();
    for (const [server, tools] of Object.entries(opts.operatorTiers ?? {})) {
      operator.set(server, new Map(Object.entries(tools)));
      this.unknownPinned.set(
        server,
        new Map(Object.entries(tools).map(([tool, pin]) => [tool, operatorFacts(pin)])),
      );
    }
    this.build = new EntryBuilder(this.mode, operator);
    this.pins = new FeedCache(store, -1, {
      // The feed also carries key and grant changes: reload only when a tool-pin write happened.
      load: (loaded) => this.enqueue(() => this.load(loaded)),
      eager: true,
      retryMs: RETRY_MIN_MS,
      onError: (err) => this.opts.onError?.(err),
    });
  }

  /** A catalogue loaded from the store and following its change feed. */
  static async open(store: Store, opts: ToolCatalogueOptions = {}): Promise<ToolCatalogue> {
    const catalogue = new ToolCatalogue(store, opts);
    await catalogue.start();
    return catalogue;
  }

  /** Loads the persisted pins and starts following the change feed. */
  start(): Promise<void> {
    return this.pins.start();
  }

  /** Reads the revision first: a write that lands between the two reads only causes one more reload. */
  private async load(loaded: number): Promise<number> {
    const revision = await this.store.toolPinsRevision();
    if (revision === loaded) return loaded;
    const records = await this.store.listToolPins();
    this.replaceAll(records);
    return revision;
  }

  /** Checks the change feed now (SQLite; a no-op on PostgreSQL). The feed also polls on a timer. */
  poll(): void {
    try {
      this.pins.poll();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  /** False while the change feed is down (PostgreSQL listener lost): acceptances may be missed. */
  healthy(): boolean {
    return this.pins.healthy();
  }

  /** What policy reads about a tool. Memory only. */
  facts(server: string, tool: string): ToolFacts {
    return (
      this.servers.get(server)?.get(tool)?.facts ?? this.unknownPinned.get(server)?.get(tool) ?? UNKNOWN_FACTS
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
      this.reported.set(pinKey(server, name), next);
      if (entry === undefined) {
        const created = this.build.entry(server, name, next, hashed.fields, hashed.fields);
        created.raw = raw;
        created.rawHash = hashed.hash;
        entries.set(name, created);
        result.added.push(name);
        continue;
      }
      const change = this.change(server, name, entry, next, hashed.fields, at);
      entries.set(name, {
        ...this.build.entry(server, name, next, entry.pinnedFields, hashed.fields),
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
    this.flushTimer = null;
    await this.enqueue(() => this.flush()).catch(() => {});
    await this.pins.close();
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
      blocked: this.build.mode === "block" && next.status === "changed",
    };
  }

  /** Replaces memory with the store's pins, then re-applies what is not written yet. */
  private replaceAll(records: ToolPinRecord[]): void {
    const old = this.servers;
    this.servers = tableOfRecords(records, old, this.build);
    reapplySightings(this.servers, [...this.inflight, ...this.pending], old, this.build);
  }

  private enqueue<R>(task: () => Promise<R>): Promise<R> {
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
      const key = pinKey(s.server, s.tool);
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
    const late = mergeRecords(this.servers, records, expected, this.build, this.now);
    reapplySightings(this.servers, this.pending, this.servers, this.build);
    if (late.length > 0) this.opts.onStoreChange?.(late);
  }
}
