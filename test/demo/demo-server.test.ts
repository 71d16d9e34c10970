import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import { textOf } from "../helpers/mcp.js";

const SERVER = fileURLToPath(new URL("../../src/demo/server.js", import.meta.url));

async function connectDemo(): Promise<Client> {
  const client = new Client({ name: "demo-server-test", version: "0.0.0" });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [SERVER], stderr: "ignore" }),
  );
  return client;
}

const isReadOnly = (t: Tool) => t.annotations?.readOnlyHint === true;
const isDestructive = (t: Tool) =>
  t.annotations?.readOnlyHint === false && t.annotations.destructiveHint === true;
const isWriting = (t: Tool) =>
  t.annotations?.readOnlyHint === false && t.annotations.destructiveHint === false;
const isOpenWorld = (t: Tool) => t.annotations?.openWorldHint === true;

describe("demo MCP server over stdio", () => {
  let client: Client;
  let tools: Tool[];

  before(async () => {
    client = await connectDemo();
    tools = (await client.listTools()).tools;
  });
  after(async () => {
    await client.close();
  });

  it("annotates every tool with title and all four hints, and declares an input schema", () => {
    assert.ok(tools.length >= 8);
    for (const tool of tools) {
      const a = tool.annotations;
      assert.ok(a !== undefined, `${tool.name} has no annotations`);
      assert.equal(typeof a.title, "string", `${tool.name} annotations.title`);
      for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const) {
        assert.equal(typeof a[hint], "boolean", `${tool.name} annotations.${hint}`);
      }
      assert.equal(tool.inputSchema.type, "object");
    }
  });

  it("offers at least one read-only, writing, destructive and open-world tool", () => {
    const names = (pred: (t: Tool) => boolean) => tools.filter(pred).map((t) => t.name);
    assert.ok(names(isReadOnly).includes("search_notes"));
    assert.deepEqual(names(isWriting).sort(), ["add_note", "update_note"]);
    assert.deepEqual(names(isDestructive).sort(), ["delete_note", "reset_notebook"]);
    assert.deepEqual(names(isOpenWorld), ["fetch_weather"]);
    const weather = tools.find((t) => t.name === "fetch_weather");
    assert.match(weather?.description ?? "", /simulated/i);
  });

  it("finds a note added by add_note with search_notes", async () => {
    const added = await client.callTool({
      name: "add_note",
      arguments: { title: "Gateway rollout", body: "Ship the portcullis canary on Tuesday", tags: ["ops"] },
    });
    const { note } = JSON.parse(textOf(added)) as { note: { id: string } };
    assert.match(note.id, /^n\d+$/);

    const found = JSON.parse(
      textOf(await client.callTool({ name: "search_notes", arguments: { query: "CANARY" } })),
    );
    assert.equal(found.count, 1);
    assert.equal(found.notes[0].id, note.id);
    assert.equal(found.notes[0].title, "Gateway rollout");
  });

  it("keeps the previous body when update_note changes it", async () => {
    const added = JSON.parse(
      textOf(await client.callTool({ name: "add_note", arguments: { title: "Draft", body: "v1" } })),
    );
    const updated = JSON.parse(
      textOf(await client.callTool({ name: "update_note", arguments: { id: added.note.id, body: "v2" } })),
    );
    assert.equal(updated.note.body, "v2");
    assert.deepEqual(updated.note.history, ["v1"]);
  });

  it("rejects arguments that do not match the input schema", async () => {
    const result = (await client.callTool({
      name: "delete_note",
      arguments: { id: "../etc" },
    })) as CallToolResult;
    assert.equal(result.isError, true);
  });

  it("returns deterministic simulated weather without network access", async () => {
    const a = JSON.parse(
      textOf(await client.callTool({ name: "fetch_weather", arguments: { city: "Lyon" } })),
    );
    const b = JSON.parse(
      textOf(await client.callTool({ name: "fetch_weather", arguments: { city: "lyon" } })),
    );
    assert.equal(a.simulated, true);
    assert.equal(a.temperature, b.temperature);
    assert.equal(a.condition, b.condition);
  });

  it("serves the notes://index resource and the summarize_notes prompt", async () => {
    const resources = await client.listResources();
    assert.ok(resources.resources.some((r) => r.uri === "notes://index"));
    const index = await client.readResource({ uri: "notes://index" });
    const first = index.contents[0];
    assert.ok(first !== undefined && "text" in first);
    const listed = JSON.parse(first.text) as Array<{ title: string }>;
    assert.ok(listed.some((n) => n.title === "Gateway rollout"));

    const prompt = await client.getPrompt({ name: "summarize_notes", arguments: { topic: "canary" } });
    const message = prompt.messages[0];
    assert.ok(message !== undefined && message.content.type === "text");
    assert.match(message.content.text, /Gateway rollout/);
  });

  it("keeps notes per process: a second server process does not see them", async () => {
    const other = await connectDemo();
    try {
      const found = JSON.parse(
        textOf(await other.callTool({ name: "search_notes", arguments: { query: "" } })),
      );
      assert.equal(found.count, 0);
    } finally {
      await other.close();
    }
  });

  it("empties the notebook with reset_notebook", async () => {
    const reset = JSON.parse(
      textOf(await client.callTool({ name: "reset_notebook", arguments: { confirm: true } })),
    );
    assert.ok(reset.deleted >= 1);
    const found = JSON.parse(
      textOf(await client.callTool({ name: "search_notes", arguments: { query: "" } })),
    );
    assert.equal(found.count, 0);
  });
});
