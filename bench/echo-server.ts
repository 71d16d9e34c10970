#!/usr/bin/env node
/**
 * Minimal MCP echo server for the benchmark and tests: one read-only tool,
 * `echo`, that returns its `text` argument.
 *
 *   node dist/bench/echo-server.js stdio
 *   node dist/bench/echo-server.js http --port N      (127.0.0.1:N/mcp; N=0 picks a free port)
 *
 * Both modes use the v2 server SDK and serve both protocol eras:
 *
 * - stdio: `serveStdio` pins each connection to the era of its opening
 *   exchange (2025 `initialize`, or 2026-07-28 `server/discover` / envelope).
 * - http: one endpoint. 2025-06-18 / 2025-11-25 traffic gets stateful
 *   sessions (initialize → `Mcp-Session-Id`, one transport and one server
 *   instance per session, GET SSE stream, DELETE). 2026-07-28 traffic is
 *   served statelessly per request by `createMcpHandler`. The split uses the
 *   SDK's own `classifyInboundRequest`, so routing never disagrees with it.
 *
 * For throughput the tool is registered on the low-level `Server` with a
 * precomputed JSON Schema: with `McpServer`, the 2026-07-28 path converts the
 * tool's zod schema to JSON Schema on every request (to scan for `x-mcp-header`
 * declarations), which measured ~40% slower. Legacy POSTs are answered as
 * plain JSON (`enableJsonResponse`), the same shape the modern path gives.
 *
 * When listening, http mode prints exactly one line to stdout:
 * `listening http://127.0.0.1:N/mcp`. Everything else goes to stderr.
 * The HTTP server binds loopback only and skips Host/Origin validation on
 * purpose: it holds nothing worth a DNS-rebinding attack and the check would
 * be measured as upstream cost.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { NodeStreamableHTTPServerTransport, toNodeHandler } from "@modelcontextprotocol/node";
import {
  type CallToolResult,
  classifyInboundRequest,
  createMcpHandler,
  isInitializeRequest,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type Tool,
} from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";

const MAX_BODY_BYTES = 4 * 1024 * 1024;

const ECHO_TOOL: Tool = {
  name: "echo",
  title: "Echo",
  description: "Returns its text argument unchanged.",
  inputSchema: {
    type: "object",
    properties: { text: { type: "string", description: "Text to echo back" } },
    required: ["text"],
  },
  annotations: {
    title: "Echo",
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  },
};

/** One server instance: per stdio connection, per HTTP session, or per 2026-07-28 request. */
function echoServer(): Server {
  const server = new Server(
    { name: "portcullis-bench-echo", version: "1.0.0" },
    { capabilities: { tools: {} } },
  );
  server.setRequestHandler("tools/list", () => ({ tools: [ECHO_TOOL] }));
  server.setRequestHandler("tools/call", (request): CallToolResult => {
    if (request.params.name !== ECHO_TOOL.name) {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    }
    const text = request.params.arguments?.text;
    if (typeof text !== "string") {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, "echo: argument 'text' must be a string");
    }
    return { content: [{ type: "text", text }] };
  });
  return server;
}

function logError(err: unknown): void {
  process.stderr.write(`echo-server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

/** Reads a POST body; `undefined` when it exceeds the limit. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const single = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;

async function serveHttp(port: number): Promise<void> {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const modern = createMcpHandler(echoServer, { legacy: "reject", onerror: logError });
  const serveModern = toNodeHandler(modern, { onerror: logError });

  async function openSession(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await echoServer().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url !== "/mcp" && !req.url?.startsWith("/mcp?"))
      return jsonRpcError(res, 404, -32000, "Not found");
    const sessionId = single(req.headers["mcp-session-id"]);
    let body: unknown;
    if (req.method === "POST") {
      const text = await readBody(req);
      if (text === undefined) return jsonRpcError(res, 413, -32000, "Request body too large");
      try {
        body = JSON.parse(text);
      } catch {
        return jsonRpcError(res, 400, -32700, "Parse error");
      }
    }
    if (sessionId !== undefined) {
      const transport = sessions.get(sessionId);
      if (transport === undefined) return jsonRpcError(res, 404, -32001, "Session not found");
      return transport.handleRequest(req, res, body);
    }
    if (req.method !== "POST")
      return jsonRpcError(res, 400, -32000, "Bad Request: Mcp-Session-Id header is required");

    const route = classifyInboundRequest({
      httpMethod: "POST",
      protocolVersionHeader: single(req.headers["mcp-protocol-version"]),
      mcpMethodHeader: single(req.headers["mcp-method"]),
      mcpNameHeader: single(req.headers["mcp-name"]),
      body,
    });
    if (route.kind !== "legacy") return serveModern(req, res, body);
    if (isInitializeRequest(body)) return openSession(req, res, body);
    return jsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided");
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logError(err);
      if (!res.headersSent) jsonRpcError(res, 500, -32603, "Internal error");
      else res.end();
    });
  });
  http.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, "127.0.0.1", () => resolve());
  });
  process.stdout.write(`listening http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp\n`);

  const shutdown = () => {
    void Promise.allSettled([...sessions.values()].map((t) => t.close()))
      .then(() => modern.close())
      .finally(() => {
        http.closeAllConnections();
        http.close(() => process.exit(0));
      });
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: echo-server stdio | echo-server http --port N\n`);
  process.exit(2);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { port: { type: "string" } },
});
const mode = positionals[0];
if (mode === "stdio") {
  serveStdio(echoServer, { onerror: logError });
} else if (mode === "http") {
  const port = Number(values.port ?? "0");
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`invalid --port: ${values.port}`);
  await serveHttp(port);
} else {
  usage(`unknown mode: ${mode ?? "(none)"}`);
}
