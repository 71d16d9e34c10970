/**
 * Which IP addresses an outbound fetch made on a client's say-so may reach (MCP security best
 * practices, "Server-Side Request Forgery"): public unicast only, an allowlist over the
 * special-purpose registries (RFC 6890, IANA IPv4/IPv6 Special-Purpose Address Registries) as
 * classified by `ipaddr.js`, so a range nobody listed is refused rather than let through.
 *
 * An IPv6 address that carries an IPv4 address is judged by the IPv4 address it carries, in
 * every form that can reach an IPv4 host (a NAT64 gateway, SIIT translator, 6to4 relay or the
 * host's own dual stack): IPv4-mapped `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), IPv4-translated
 * `::ffff:0:a.b.c.d` (RFC 6145 / RFC 7915), the NAT64 well-known prefix `64:ff9b::/96`
 * (RFC 6052 §2.1), 6to4 `2002:AABB:CCDD::/48` (RFC 3056 §2) and the deprecated
 * IPv4-compatible `::a.b.c.d` (RFC 4291 §2.5.5.1). Forms whose IPv4 part cannot be located
 * (the local-use NAT64 prefix `64:ff9b:1::/48` of RFC 8215, whose layout the operator picks;
 * Teredo, RFC 4380) are refused.
 */
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/** Ranges that the "dev" environment also allows (a developer's own machine and network). */
const DEV_RANGES = new Set<string>(["loopback", "private", "uniqueLocal"]);

function v4(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/**
 * The IPv4 address embedded in `address`; `null` when it embeds none; `"opaque"` when it is a
 * form that embeds one at a place this code cannot know.
 */
export function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | null | "opaque" {
  const p = address.parts;
  const at = (i: number) => p[i] ?? 0;
  switch (address.range()) {
    case "ipv4Mapped":
    case "rfc6145":
      return v4(at(6), at(7));
    case "rfc6052":
      // 64:ff9b::/96 carries it in the last 32 bits; 64:ff9b:1::/48 wherever the operator chose.
      return at(2) === 0 ? v4(at(6), at(7)) : "opaque";
    case "6to4":
      return v4(at(1), at(2));
    case "teredo":
      return "opaque";
    default:
      break;
  }
  // ::a.b.c.d (IPv4-compatible, deprecated); :: and ::1 are IPv6 proper.
  if (p.slice(0, 6).every((g) => g === 0) && (at(6) !== 0 || at(7) > 1)) return v4(at(6), at(7));
  return null;
}

/** Why `address` (an IP literal) must not be fetched under `environment`, or null when it may be. */
export function forbiddenAddressReason(address: string, environment: string): string | null {
  // node's strict parser first: ipaddr.js also accepts classful forms such as `127.1`.
  if (isIP(address) === 0) return "not an IP address";
  return classify(ipaddr.parse(address), environment, address);
}

function classify(ip: ipaddr.IPv4 | ipaddr.IPv6, environment: string, shown: string): string | null {
  if (ip.kind() === "ipv6") {
    const inner = embeddedIPv4(ip as ipaddr.IPv6);
    if (inner === "opaque") return `${shown} embeds an IPv4 address that cannot be checked`;
    if (inner !== null) {
      const reason = classify(inner, environment, inner.toString());
      return reason === null ? null : `${shown} embeds IPv4 ${inner.toString()}: ${reason}`;
    }
  }
  const range = ip.range();
  if (range === "unicast") return null;
  if (environment === "dev" && DEV_RANGES.has(range)) return null;
  return `${shown} is a ${range} address, not public unicast`;
}

/** True when `address` is (or embeds) a loopback address. */
export function isLoopbackAddress(address: string): boolean {
  if (isIP(address) === 0) return false;
  const ip = ipaddr.parse(address);
  const inner = ip.kind() === "ipv6" ? embeddedIPv4(ip as ipaddr.IPv6) : null;
  const judged = inner === null || inner === "opaque" ? ip : inner;
  return judged.range() === "loopback";
}
