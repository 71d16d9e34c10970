/**
 * Portcullis' bundled demo MCP server: tools of every risk tier, one resource
 * and one prompt, over an in-memory notebook.
 *
 * Every tool carries the MCP tool annotations (spec 2025-06-18 "Tools" §
 * Tool Annotations: readOnlyHint, destructiveHint, idempotentHint,
 * openWorldHint) because the gateway derives each call's risk tier from them.
 * State lives in the process, so a gateway that spawns one child per caller
 * makes isolation observable: a note one caller adds is invisible to another.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { VERSION } from "../version.js";

export interface Note {
  id: string;
  title: string;
  body: string;
  tags: string[];
  createdAt: string;
  updatedAt: string;
  /** Earlier bodies, oldest first: an update never loses text, which is why update_note is not destructive. */
  history: string[];
}

/** The per-process notebook every tool reads and writes. */
export class Notebook {
  private readonly notes = new Map<string, Note>();
  private nextId = 1;

  constructor(private readonly now: () => Date = () => new Date()) {}

  add(title: string, body: string, tags: string[]): Note {
    const at = this.now().toISOString();
    const note: Note = {
      id: `n${this.nextId++}`,
      title,
      body,
      tags,
      createdAt: at,
      updatedAt: at,
      history: [],
    };
    this.notes.set(note.id, note);
    return note;
  }

  get(id: string): Note | undefined {
    return this.notes.get(id);
  }

  update(id: string, change: { title?: string; body?: string; tags?: string[] }): Note | undefined {
    const note = this.notes.get(id);
    if (note === undefined) return undefined;
    if (change.body !== undefined && change.body !== note.body) note.history.push(note.body);
    if (change.title !== undefined) note.title = change.title;
    if (change.body !== undefined) note.body = change.body;
    if (change.tags !== undefined) note.tags = change.tags;
    note.updatedAt = this.now().toISOString();
    return note;
  }

  delete(id: string): boolean {
    return this.notes.delete(id);
  }

  /** Removes every note and returns how many there were. */
  reset(): number {
    const count = this.notes.size;
    this.notes.clear();
    this.nextId = 1;
    return count;
  }

  /** Case-insensitive substring match over title, body and tags; an empty query lists everything. */
  search(query: string, limit: number): Note[] {
    const q = query.trim().toLowerCase();
    const hits: Note[] = [];
    for (const note of this.notes.values()) {
      if (hits.length >= limit) break;
      const haystack = [note.title, note.body, ...note.tags].join("\n").toLowerCase();
      if (q === "" || haystack.includes(q)) hits.push(note);
    }
    return hits;
  }

  all(): Note[] {
    return [...this.notes.values()];
  }
}

const NOTE_ID = z
  .string()
  .regex(/^n[0-9]+$/, "a note id looks like n1")
  .describe("Note id as returned by add_note, e.g. n1");

function text(value: string): CallToolResult {
  return { content: [{ type: "text", text: value }] };
}

function json(value: unknown): CallToolResult {
  return {
    content: [{ type: "text", text: JSON.stringify(value) }],
    structuredContent: value as Record<string, unknown>,
  };
}

function toolError(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/** Deterministic, non-cryptographic string hash (FNV-1a) so fake weather is stable per city. */
function fnv1a(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const CONDITIONS = ["sunny", "partly cloudy", "overcast", "light rain", "heavy rain", "snow", "fog", "windy"];

/** Simulated weather: a pure function of the city (and day), never a network call. */
export function simulatedWeather(city: string, unit: "celsius" | "fahrenheit", day: string) {
  const seed = fnv1a(`${city.trim().toLowerCase()}|${day}`);
  const celsius = (seed % 45) - 10;
  return {
    city,
    day,
    condition: CONDITIONS[seed % CONDITIONS.length] ?? "sunny",
    temperature: unit === "celsius" ? celsius : Math.round((celsius * 9) / 5 + 32),
    unit,
    humidityPercent: 20 + (seed % 75),
    simulated: true,
  };
}

/** Registers the demo tools, the `notes://index` resource and the `summarize_notes` prompt. */
export function registerDemoCapabilities(
  server: McpServer,
  notebook: Notebook,
  now: () => Date = () => new Date(),
) {
  // ── read-only ────────────────────────────────────────────────────────────
  server.registerTool(
    "get_time",
    {
      title: "Get current time",
      description: "Returns the current date and time, optionally in an IANA time zone (e.g. Europe/Paris).",
      inputSchema: { timeZone: z.string().min(1).max(64).optional().describe("IANA time zone; default UTC") },
      annotations: {
        title: "Get current time",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ timeZone }) => {
      const at = now();
      const zone = timeZone ?? "UTC";
      let local: string;
      try {
        local = new Intl.DateTimeFormat("en-GB", {
          timeZone: zone,
          dateStyle: "full",
          timeStyle: "long",
        }).format(at);
      } catch {
        return toolError(`unknown time zone: ${zone}`);
      }
      return json({ iso: at.toISOString(), timeZone: zone, local });
    },
  );

  server.registerTool(
    "echo",
    {
      title: "Echo",
      description: "Returns its text argument unchanged.",
      inputSchema: { text: z.string().max(100_000).describe("Text to echo back") },
      annotations: {
        title: "Echo",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ text: value }) => text(value),
  );

  server.registerTool(
    "search_notes",
    {
      title: "Search notes",
      description:
        "Case-insensitive search over note titles, bodies and tags. An empty query lists all notes.",
      inputSchema: {
        query: z.string().max(1000).describe("Text to look for; empty lists every note"),
        limit: z.number().int().min(1).max(100).optional().describe("Maximum number of notes (default 20)"),
      },
      annotations: {
        title: "Search notes",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ query, limit }) => {
      const notes = notebook.search(query, limit ?? 20);
      return json({ count: notes.length, notes });
    },
  );

  // ── writing, not destructive ─────────────────────────────────────────────
  server.registerTool(
    "add_note",
    {
      title: "Add note",
      description: "Adds a note to the notebook and returns it with its new id.",
      inputSchema: {
        title: z.string().min(1).max(200),
        body: z.string().max(20_000),
        tags: z.array(z.string().min(1).max(50)).max(20).optional(),
      },
      annotations: {
        title: "Add note",
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    ({ title, body, tags }) => json({ note: notebook.add(title, body, tags ?? []) }),
  );

  server.registerTool(
    "update_note",
    {
      title: "Update note",
      description:
        "Changes a note's title, body or tags. The previous body is kept in the note's history, so nothing is lost.",
      inputSchema: {
        id: NOTE_ID,
        title: z.string().min(1).max(200).optional(),
        body: z.string().max(20_000).optional(),
        tags: z.array(z.string().min(1).max(50)).max(20).optional(),
      },
      annotations: {
        title: "Update note",
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ id, title, body, tags }) => {
      const note = notebook.update(id, {
        ...(title !== undefined && { title }),
        ...(body !== undefined && { body }),
        ...(tags !== undefined && { tags }),
      });
      return note === undefined ? toolError(`no note with id ${id}`) : json({ note });
    },
  );

  // ── destructive ──────────────────────────────────────────────────────────
  server.registerTool(
    "delete_note",
    {
      title: "Delete note",
      description: "Permanently deletes one note, history included.",
      inputSchema: { id: NOTE_ID },
      annotations: {
        title: "Delete note",
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    ({ id }) => (notebook.delete(id) ? json({ deleted: id }) : toolError(`no note with id ${id}`)),
  );

  server.registerTool(
    "reset_notebook",
    {
      title: "Reset notebook",
      description: "Permanently deletes every note. Requires confirm: true.",
      inputSchema: { confirm: z.literal(true).describe("Must be true") },
      annotations: {
        title: "Reset notebook",
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    () => json({ deleted: notebook.reset() }),
  );

  // ── open world (simulated) ───────────────────────────────────────────────
  server.registerTool(
    "fetch_weather",
    {
      title: "Fetch weather",
      description:
        "Current weather for a city from an external weather service. SIMULATED in this demo: the data is " +
        "deterministic fake data computed locally and no network request is made; the tool is annotated as " +
        "open-world because a real implementation would reach the internet.",
      inputSchema: {
        city: z.string().min(1).max(100),
        unit: z.enum(["celsius", "fahrenheit"]).optional().describe("Default celsius"),
      },
      annotations: {
        title: "Fetch weather (simulated)",
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    ({ city, unit }) => json(simulatedWeather(city, unit ?? "celsius", now().toISOString().slice(0, 10))),
  );

  // ── resource and prompt ──────────────────────────────────────────────────
  server.registerResource(
    "notes-index",
    "notes://index",
    {
      title: "Notes index",
      description: "Id, title and tags of every note in this notebook",
      mimeType: "application/json",
    },
    (uri) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: "application/json",
          text: JSON.stringify(notebook.all().map(({ id, title, tags }) => ({ id, title, tags }))),
        },
      ],
    }),
  );

  server.registerPrompt(
    "summarize_notes",
    {
      title: "Summarize notes",
      description: "Asks the model to summarize the notes, optionally only those matching a topic",
      argsSchema: { topic: z.string().max(200).optional().describe("Only notes matching this text") },
    },
    ({ topic }) => {
      const notes = notebook.search(topic ?? "", 100);
      const listing =
        notes.length === 0
          ? "(the notebook is empty)"
          : notes.map((n) => `## ${n.title} [${n.id}]\n${n.body}`).join("\n\n");
      return {
        description: topic === undefined ? "Summarize all notes" : `Summarize notes about ${topic}`,
        messages: [
          {
            role: "user",
            content: { type: "text", text: `Summarize these notes in a few bullet points.\n\n${listing}` },
          },
        ],
      };
    },
  );
}

/** A fresh demo server with its own empty notebook. */
export function createDemoServer(): McpServer {
  const server = new McpServer(
    { name: "portcullis-demo", title: "Portcullis demo server", version: VERSION },
    { instructions: "A demo notebook. Notes live only as long as this server process." },
  );
  registerDemoCapabilities(server, new Notebook());
  return server;
}
