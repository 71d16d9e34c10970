/**
 * The floor for any Node gateway: a bare reverse proxy (node:http server, one undici pool to
 * the upstream, request body buffered, response passed back, no authentication). The bench
 * runs it as its own process so /proc/<pid>/stat measures only the hop.
 *
 *   node dist/bench/bareProxy.js http://127.0.0.1:N/mcp   prints `listening http://127.0.0.1:M/mcp`
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";

const upstream = new URL(process.argv[2] ?? "http://127.0.0.1:1/mcp");
const pool = new Pool(upstream.origin, { connections: 64, keepAliveTimeout: 30_000 });
const FORWARDED = ["content-type", "accept", "mcp-session-id", "mcp-protocol-version"];
const PASSED_BACK = ["content-type", "mcp-session-id", "mcp-protocol-version", "cache-control"];
const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers: Record<string, string> = {};
  for (const n of FORWARDED) if (typeof req.headers[n] === "string") headers[n] = req.headers[n];
  try {
    const up = await pool.request({
      path: upstream.pathname,
      method: "POST",
      headers,
      body: Buffer.concat(chunks),
    });
    const body = Buffer.from(await up.body.arrayBuffer());
    const out: Record<string, string | number> = { "content-length": body.length };
    for (const n of PASSED_BACK) if (typeof up.headers[n] === "string") out[n] = up.headers[n];
    res.writeHead(up.statusCode, out).end(body);
  } catch (err) {
    res.writeHead(502).end(String(err));
  }
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp\n`);
});
