/**
 * The gateway's port while it starts: bound first, so the public base URL (and the built-in
 * authorization server's issuer, which is that URL) is known before anything else is built,
 * and a gateway waiting for its store answers instead of refusing connections.
 *
 * Until the real listener takes the port over, every request gets 503 with Retry-After
 * (RFC 9110 §15.6.4): `/readyz` is not ready, `/mcp/*` answers a JSON-RPC error, anything
 * else an OAuth `temporarily_unavailable` error. `/healthz` (liveness) answers 200
 * `{"status":"starting"}` so an orchestrator does not kill a replica that is only waiting for
 * its database. Nothing behind this listener is reachable: no credential is looked at.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { errorReply, GatewayError, RpcCode, STORE_RETRY_AFTER_SECONDS } from "../core/errors.js";
import { listenFailure } from "../core/operationalError.js";
import { servingTls, type TlsListen } from "./servingTls.js";

export interface StartupListener {
  /** The bound port (the OS's pick when the configured port is 0). */
  readonly port: number;
  /** Frees the port for the real listener. */
  close(): Promise<void>;
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?", 1)[0] as string;
  let status = 503;
  let body: unknown;
  if (path === "/healthz") {
    status = 200;
    body = { status: "starting" };
  } else if (path === "/readyz") body = { status: "not ready" };
  else if (path.startsWith("/mcp/"))
    body = errorReply(
      new GatewayError(503, RpcCode.StoreUnavailable, "Service starting; retry later", "gateway starting"),
    ).body;
  else
    body = { error: "temporarily_unavailable", error_description: "The gateway is starting; retry later." };
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    "cache-control": "no-store",
    connection: "close",
    ...(status === 503 ? { "retry-after": String(STORE_RETRY_AFTER_SECONDS) } : {}),
  });
  res.end(text);
}

/** `tls`: `listen.tls`, so an https client is answered 503 as well (no client certificate asked). */
export async function listenWhileStarting(
  host: string,
  port: number,
  tls?: TlsListen,
): Promise<StartupListener> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Discard any body; the answer does not depend on it.
    req.resume();
    answer(req, res);
  };
  const timeouts = { requestTimeout: 5_000, headersTimeout: 5_000 };
  const server =
    tls === undefined
      ? createServer(timeouts, handle)
      : createHttpsServer({ ...timeouts, ...servingTls(tls) }, handle);
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error) => reject(listenFailure(host, port, err));
    server.once("error", failed);
    server.listen({ host, port }, () => {
      server.off("error", failed);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
