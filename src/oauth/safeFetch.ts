/**
 * Outbound fetches the authorization server makes on a client's say-so — Client ID Metadata
 * Documents (draft-ietf-oauth-client-id-metadata-document §4, §6 "Security
 * Considerations: server-side request forgery"), and any `jwks_uri` — guarded against SSRF
 * (MCP security best practices, "Server-Side Request Forgery"):
 * - https only (plain http only to loopback, and only in the "dev" environment);
 * - the host is resolved once, every address must be public unicast (./publicAddress.ts:
 *   IPv6 forms that embed an IPv4 address are judged by it), and the connection goes to the
 *   checked address, so a DNS answer that changes between check and connect (DNS rebinding)
 *   cannot redirect it;
 * - redirects are never followed; the body is capped (64 KiB) and the whole exchange timed
 *   out (5 s).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { forbiddenAddressReason, isLoopbackAddress } from "./publicAddress.js";

export const DEFAULT_MAX_BYTES = 64 * 1024;
export const DEFAULT_TIMEOUT_MS = 5_000;

export type SafeFetchErrorCode =
  | "invalid_url"
  | "forbidden_scheme"
  | "forbidden_address"
  | "dns_failure"
  | "timeout"
  | "response_too_large"
  | "network_error";

export class SafeFetchError extends Error {
  override name = "SafeFetchError";
  constructor(
    readonly code: SafeFetchErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SafeFetchPolicy {
  /** "dev" additionally allows loopback and private targets, and plain http to loopback. */
  environment: string;
  maxBytes?: number;
  timeoutMs?: number;
  /** Replaces DNS resolution (tests). */
  resolve?: (hostname: string) => Promise<string[]>;
}

export interface SafeFetchInit {
  headers?: HeadersInit;
  signal?: AbortSignal;
}

async function resolveHost(hostname: string, policy: SafeFetchPolicy): Promise<string[]> {
  const bare = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  if (isIP(bare) !== 0) return [bare];
  try {
    if (policy.resolve) return await policy.resolve(bare);
    return (await dnsLookup(bare, { all: true, verbatim: true })).map((a) => a.address);
  } catch (err) {
    throw new SafeFetchError("dns_failure", `cannot resolve ${bare}: ${(err as Error).message}`);
  }
}

/**
 * Checks the URL and resolves its host once; returns the address to connect to. Every
 * resolved address must pass, so a hostname that mixes public and private answers is refused.
 */
export async function checkTarget(url: URL, policy: SafeFetchPolicy): Promise<string> {
  if (url.username !== "" || url.password !== "") {
    throw new SafeFetchError("invalid_url", "URLs with credentials are refused");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new SafeFetchError("forbidden_scheme", `${url.protocol} URLs are refused; use https`);
  }
  const addresses = await resolveHost(url.hostname, policy);
  if (addresses.length === 0) throw new SafeFetchError("dns_failure", `${url.hostname} has no address`);
  for (const address of addresses) {
    const reason = forbiddenAddressReason(address, policy.environment);
    if (reason !== null) throw new SafeFetchError("forbidden_address", `${url.hostname}: ${reason}`);
  }
  if (url.protocol === "http:" && !(policy.environment === "dev" && addresses.every(isLoopbackAddress))) {
    throw new SafeFetchError("forbidden_scheme", "plain http is refused (allowed to loopback in dev only)");
  }
  return addresses[0] as string;
}

/** GET `url` under the SSRF policy; the response body is already read (capped). */
export async function safeFetch(
  input: string | URL,
  policy: SafeFetchPolicy,
  init: SafeFetchInit = {},
): Promise<Response> {
  const url = typeof input === "string" ? URL.parse(input) : input;
  if (url === null) throw new SafeFetchError("invalid_url", "not a URL");
  const address = await checkTarget(url, policy);
  const family = isIP(address);
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        { address, family },
      ]);
    } else {
      callback(null, address, family);
    }
  };
  const maxBytes = policy.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeout = AbortSignal.timeout(policy.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = init.signal ? AbortSignal.any([timeout, init.signal]) : timeout;
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, key) => {
    headers[key] = value;
  });
  headers["accept-encoding"] = "identity";

  const response = await new Promise<{ res: IncomingMessage; body: Buffer }>((resolve, reject) => {
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(url, { method: "GET", headers, lookup: pinned, agent: false, signal }, (res) => {
      const declared = Number(res.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.destroy();
        reject(new SafeFetchError("response_too_large", `response exceeds ${maxBytes} bytes`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          reject(new SafeFetchError("response_too_large", `response exceeds ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on("error", (err) => reject(err));
    });
    req.on("error", (err) => {
      if (signal.aborted && timeout.aborted) {
        reject(
          new SafeFetchError(
            "timeout",
            `no complete answer within ${policy.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`,
          ),
        );
      } else {
        reject(err instanceof SafeFetchError ? err : new SafeFetchError("network_error", err.message));
      }
    });
    req.end();
  });

  const out = new Headers();
  for (const [key, value] of Object.entries(response.res.headers)) {
    if (Array.isArray(value)) for (const v of value) out.append(key, v);
    else if (value !== undefined) out.set(key, value);
  }
  const status = response.res.statusCode ?? 502;
  const nullBody = status === 204 || status === 205 || status === 304;
  return new Response(nullBody ? null : new Uint8Array(response.body), { status, headers: out });
}

/** Client metadata as a Client ID Metadata Document states it (RFC 7591 §2 names). */
export type ClientMetadata = Record<string, unknown> & { client_id: string; redirect_uris?: string[] };

const SHARED_SECRET_METHODS = new Set(["client_secret_basic", "client_secret_post", "client_secret_jwt"]);

/**
 * Fetches and validates a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-
 * document §3, §4.1): the URL is https with a path and no fragment or credentials, the
 * document is a JSON object whose `client_id` equals the URL exactly, and it declares no
 * shared secret. Errors carry RFC 7591 / RFC 6749 codes in their message prefix.
 */
export async function fetchClientIdMetadataDocument(
  clientId: string,
  policy: SafeFetchPolicy,
): Promise<ClientMetadata> {
  const url = URL.parse(clientId);
  if (url === null || url.hash !== "" || clientId.includes("#") || url.pathname === "/") {
    throw new SafeFetchError("invalid_url", "invalid_client: client_id is not a valid metadata document URL");
  }
  const response = await safeFetch(url, policy, { headers: { accept: "application/json" } });
  if (response.status !== 200) {
    throw new SafeFetchError(
      "network_error",
      `invalid_client: metadata document answered HTTP ${response.status}`,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(await response.text());
  } catch {
    throw new SafeFetchError("invalid_url", "invalid_client_metadata: metadata document is not JSON");
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new SafeFetchError(
      "invalid_url",
      "invalid_client_metadata: metadata document is not a JSON object",
    );
  }
  const metadata = document as Record<string, unknown>;
  if (metadata.client_id !== clientId) {
    throw new SafeFetchError(
      "invalid_url",
      "invalid_client_metadata: the document's client_id differs from the URL it was fetched from",
    );
  }
  if ("client_secret" in metadata || SHARED_SECRET_METHODS.has(String(metadata.token_endpoint_auth_method))) {
    throw new SafeFetchError(
      "invalid_url",
      "invalid_client_metadata: metadata documents must not use shared secrets",
    );
  }
  return metadata as ClientMetadata;
}
