/**
 * X.509-SVIDs as client certificates over mutual TLS (spiffe/spiffe standards/X509-SVID.md):
 * - §2 the SPIFFE ID is the certificate's URI SAN, and a leaf SVID has exactly one;
 * - §4.1 a leaf SVID is not a CA (basicConstraints cA false);
 * - §5 validation: the chain (leaf, then the intermediates the client sent) must reach an
 *   X.509 authority of the bundle of the trust domain named in the SPIFFE ID (a certificate
 *   naming trust domain A issued by B's CA is refused), every certificate on the way within
 *   its validity period, every issuer a CA.
 * The TLS layer only proves the client holds the certificate's key (requestCert, with
 * OpenSSL's chain check off): the chain is judged here, against the bundle in force now, so a
 * rotated bundle applies to the next request without a restart. The verdict is remembered per
 * TLS connection until a bundle changes or a certificate on the path expires.
 */
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import type { Principal } from "../../core/principal.js";
import { compileScopes } from "../../core/scope.js";
import { isSpiffeId, parseSpiffeId } from "./spiffeId.js";
import type { TrustBundles } from "./trustBundle.js";

const ALL_SERVERS = compileScopes(["*"]);
const MAX_PATH = 8;

/** The verdict on a client certificate. */
export type PeerCheck =
  | { ok: true; principal: Principal }
  | { ok: false; reason: string; credentialId: string | null };

interface Remembered {
  generation: number;
  until: number;
  check: PeerCheck;
}

/** The SPIFFE URI SANs of a certificate's subjectAltName text (Node's `a:b, c:d` form). */
export function uriSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  if (text === undefined) return [];
  return text
    .split(", ")
    .filter((entry) => entry.startsWith("URI:"))
    .map((entry) => entry.slice(4));
}

export class X509SvidVerifier {
  private readonly verdicts = new WeakMap<TLSSocket, Remembered>();

  constructor(
    private readonly bundles: TrustBundles,
    private readonly environment: string,
  ) {}

  /**
   * The verdict on the client certificate of a TLS connection, or null when the client sent
   * none (or the connection is not TLS).
   */
  checkConnection(socket: TLSSocket, now: number = Date.now()): PeerCheck | null {
    const known = this.verdicts.get(socket);
    if (known !== undefined && known.generation === this.bundles.generation && now < known.until)
      return known.check;
    const chain = peerChain(socket);
    if (chain === null) return null;
    const generation = this.bundles.generation;
    const { check, until } = this.judge(chain, now);
    this.verdicts.set(socket, { generation, until, check });
    return check;
  }

  /** Judges a chain: the leaf first, then the intermediates as the client sent them. */
  judge(chain: readonly X509Certificate[], now: number = Date.now()): { check: PeerCheck; until: number } {
    const leaf = chain[0] as X509Certificate;
    const credentialId = `x509-svid:${leaf.fingerprint256.replaceAll(":", "").slice(0, 32).toLowerCase()}`;
    const refuse = (reason: string) => ({
      check: { ok: false as const, reason: `X.509-SVID refused: ${reason}`, credentialId },
      until: Number.POSITIVE_INFINITY,
    });
    if (leaf.ca) return refuse("the client certificate is a CA certificate, not a leaf SVID");
    const uris = uriSans(leaf);
    if (uris.length === 0) return refuse("the client certificate has no URI SAN (no SPIFFE ID)");
    if (uris.length > 1)
      return refuse(`the client certificate has ${uris.length} URI SANs; an SVID has exactly one`);
    const id = parseSpiffeId(uris[0] as string);
    if (!isSpiffeId(id)) return refuse(`the URI SAN is not a SPIFFE ID: ${id.problem}`);
    const bundle = this.bundles.get(id.trustDomain)?.current;
    if (bundle === undefined) return refuse(`trust domain ${id.trustDomain} is not configured`);
    if (bundle === null) return refuse(`no trust bundle loaded yet for ${id.trustDomain}`);
    let until = Number.POSITIVE_INFINITY;
    let current = leaf;
    const unused = chain.slice(1);
    for (let depth = 0; depth < MAX_PATH; depth++) {
      const validity = periodProblem(current, now);
      if (validity !== null)
        return refuse(`${depth === 0 ? "the client certificate" : "an intermediate"} ${validity}`);
      until = Math.min(until, Date.parse(current.validTo));
      const authority = bundle.x509Authorities.find((a) => issuedBy(current, a));
      if (authority !== undefined) {
        const problem = periodProblem(authority, now);
        if (problem !== null) return refuse(`the trust domain's X.509 authority ${problem}`);
        until = Math.min(until, Date.parse(authority.validTo));
        return {
          check: { ok: true, principal: this.principalOf(id.id, leaf, credentialId) },
          until,
        };
      }
      const i = unused.findIndex((c) => c.ca && issuedBy(current, c));
      if (i < 0)
        return refuse(`the chain does not reach an X.509 authority of trust domain ${id.trustDomain}`);
      current = unused.splice(i, 1)[0] as X509Certificate;
    }
    return refuse(`the chain is longer than ${MAX_PATH} certificates`);
  }

  private principalOf(id: string, leaf: X509Certificate, credentialId: string): Principal {
    return {
      id,
      kind: "workload",
      method: "mtls",
      name: id,
      environment: this.environment,
      credentialId,
      // Every server: policy (match.workloads) decides what the workload may reach.
      scopes: ALL_SERVERS,
      oauthScopes: null,
      groups: [],
      issuedAt: new Date(leaf.validFrom),
      expiresAt: new Date(leaf.validTo),
    };
  }
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function periodProblem(cert: X509Certificate, now: number): string | null {
  if (now < Date.parse(cert.validFrom)) return `is not valid before ${cert.validFrom}`;
  if (now > Date.parse(cert.validTo)) return `expired at ${cert.validTo}`;
  return null;
}

/** The certificates the client sent, leaf first; null when it sent none. */
function peerChain(socket: TLSSocket): X509Certificate[] | null {
  const detailed = socket.getPeerCertificate(true);
  if (detailed === null || detailed === undefined || detailed.raw === undefined) return null;
  const out: X509Certificate[] = [];
  let at: typeof detailed | undefined = detailed;
  const seen = new Set<string>();
  while (at?.raw !== undefined && out.length < MAX_PATH + 1) {
    const key = at.fingerprint256;
    if (seen.has(key)) break;
    seen.add(key);
    out.push(new X509Certificate(at.raw));
    at = at.issuerCertificate;
  }
  return out;
}
