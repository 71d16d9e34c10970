/**
 * Outbound fetches the authorization server makes on a client's say-so — Client ID Metadata
 * Documents (draft-ietf-oauth-client-id-metadata-document §4, §6 "Security
 * Considerations: server-side request forgery"), and any `jwks_uri` — guarded against SSRF
 * (MCP security best practices, "Server-Side Request Forgery"):
 * - https only (plain http only to loopback, and only in the "dev" environment);
 * - the host is resolved once, every address is checked (private, loopback, link-local,
 *   CGNAT, multicast, documentation and other special-use ranges, IPv4-mapped and NAT64
 *   IPv6 forms included), and the connection goes to the checked address, so a DNS answer
 *   that changes between check and connect (DNS rebinding) cannot redirect it;
 * - redirects are never followed; the body is capped (64 KiB) and the whole exchange timed
 *   out (5 s).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

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

// Special-use ranges (RFC 6890 and the IANA registries).
const SPECIAL_V4: Array<[string, number]> = [
  ["0.0.0.0", 8],
  ["100.64.0.0", 10],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];
const PRIVATE_V4: Array<[string, number]> = [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
];
const LOOPBACK_V4: Array<[string, number]> = [["127.0.0.0", 8]];
const LINK_LOCAL_V4: Array<[string, number]> = [["169.254.0.0", 16]];
const SPECIAL_V6: Array<[string, number]> = [
  ["::", 128],
  ["64:ff9b::", 96],
  ["64:ff9b:1::", 48],
  ["100::", 64],
  ["2001::", 23],
  ["2001:db8::", 32],
  ["2002::", 16],
  ["fec0::", 10],
  ["ff00::", 8],
];
const PRIVATE_V6: Array<[string, number]> = [["fc00::", 7]];
const LOOPBACK_V6: Array<[string, number]> = [["::1", 128]];
const LINK_LOCAL_V6: Array<[string, number]> = [["fe80::", 10]];

function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, "ipv4");
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, "ipv6");
  return list;
}

const ALWAYS_BLOCKED = blockList([...SPECIAL_V4, ...LINK_LOCAL_V4], [...SPECIAL_V6, ...LINK_LOCAL_V6]);
const LOCAL_NETWORKS = blockList([...PRIVATE_V4, ...LOOPBACK_V4], [...PRIVATE_V6, ...LOOPBACK_V6]);
const LOOPBACK = blockList(LOOPBACK_V4, LOOPBACK_V6);

/** `::ffff:a.b.c.d` / `::ffff:abcd:ef01` (and the deprecated `::a.b.c.d`) → the IPv4 address. */
function embeddedIPv4(address: string): string | null {
  const groups = expandIPv6(address);
  if (groups === null) return null;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || groups[5] === 0);
  if (!mapped) return null;
  if (groups[5] === 0 && (groups[6] ?? 0) === 0) return null; // :: and ::1 are IPv6 proper
  const hi = groups[6] ?? 0;
  const lo = groups[7] ?? 0;
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

function expandIPv6(address: string): number[] | null {
  let text = address.toLowerCase();
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined) {
    const octets = dotted[1].split(".").map(Number);
    const [a = 0, b = 0, c = 0, d = 0] = octets;
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(halves[0] ?? "");
  const right = halves.length === 2 ? parse(halves[1] ?? "") : [];
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  return groups.some((g) => Number.isNaN(g) || g < 0 || g > 0xffff) ? null : groups;
}

/** Why `address` must not be fetched under `environment`, or null when it may be. */
export function forbiddenAddressReason(address: string, environment: string): string | null {
  const family = isIP(address);
  if (family === 0) return "not an IP address";
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    if (v4 !== null) {
      const inner = forbiddenAddressReason(v4, environment);
      return inner === null ? null : `IPv4-mapped ${inner}`;
    }
  }
  const type = family === 4 ? "ipv4" : "ipv6";
  if (ALWAYS_BLOCKED.check(address, type)) return `${address} is a special-use or link-local address`;
  if (environment !== "dev" && LOCAL_NETWORKS.check(address, type)) {
    return `${address} is a private or loopback address`;
  }
  return null;
}

function isLoopback(address: string): boolean {
  const v4 = isIP(address) === 6 ? embeddedIPv4(address) : null;
  const a = v4 ?? address;
  return LOOPBACK.check(a, isIP(a) === 4 ? "ipv4" : "ipv6");
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
  if (url.protocol === "http:" && !(policy.environment === "dev" && addresses.every(isLoopback))) {
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
