#!/usr/bin/env node
/**
 * The bundled demo MCP server over stdio (`node dist/src/demo/server.js`).
 * stdout carries the JSON-RPC stream only; diagnostics go to stderr.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { createDemoServer } from "./tools.js";

const server = createDemoServer();
const transport = new StdioServerTransport();

server.server.onerror = (err) => {
  process.stderr.write(`portcullis-demo: ${err.message}\n`);
};
// The client closing our stdin is the end of the session.
process.stdin.on("end", () => {
  void server.close().finally(() => process.exit(0));
});

await server.connect(transport);
process.stderr.write(`portcullis-demo: ready (pid ${process.pid})\n`);
