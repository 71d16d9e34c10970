/**
 * The gateway's own X.509-SVID for mutual TLS to an upstream marked `tls.spiffe`
 * (docs/workload-identity.md), and the check of the upstream's identity
 * (spiffe/spiffe standards/X509-SVID.md §5.2: a peer is authorised by its SPIFFE ID, not by
 * its host name):
 * - the certificate, key and optional bundle are PEM files written by a SPIFFE helper
 *   (spiffe-helper, SPIRE agent); they are re-read when they change, and a new set is used only
 *   once it is complete and consistent (the key matches the certificate), since a helper
 *   writes them one after the other;
 * - the upstream's chain must reach the X.509 authorities of its trust domain (the PEM bundle
 *   file, or the `spiffe.trustDomains` bundle, which also rotates), and its certificate must
 *   carry exactly one URI SAN, equal to the configured SPIFFE ID.
 * The result is read by forward/ (structurally its `UpstreamTls`) when opening a connection.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import type { Logger } from "pino";
import { ConfigError } from "../../config/load.js";
import type { UpstreamSpiffeTlsConfig } from "../../config/schema.js";
import { type FileWatch, watchFiles } from "./fileWatch.js";
import { isSpiffeId, parseSpiffeId } from "./spiffeId.js";
import type { TrustBundles } from "./trustBundle.js";

interface Material {
  cert: string;
  key: string;
  /** PEM authorities from the bundle file, or null to use the trust domain's bundle. */
  fileCa: string[] | null;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the SVID files; throws an Error saying what is wrong. */
function readMaterial(config: UpstreamSpiffeTlsConfig): Material {
  const cert = readFileSync(config.svid.cert, "utf8");
  const key = readFileSync(config.svid.key, "utf8");
  const certs = cert.match(PEM_CERT) ?? [];
  if (certs.length === 0) throw new Error(`${config.svid.cert} holds no PEM certificate`);
  const leaf = new X509Certificate(certs[0] as string);
  if (!leaf.checkPrivateKey(createPrivateKey(key)))
    throw new Error(`${config.svid.key} is not the key of the certificate in ${config.svid.cert}`);
  if (Date.parse(leaf.validTo) < Date.now())
    throw new Error(`the SVID in ${config.svid.cert} expired at ${leaf.validTo}`);
  let fileCa: string[] | null = null;
  if (config.svid.bundle !== undefined) {
    fileCa = readFileSync(config.svid.bundle, "utf8").match(PEM_CERT) ?? [];
    if (fileCa.length === 0) throw new Error(`${config.svid.bundle} holds no PEM certificate`);
  }
  return { cert, key, fileCa };
}

/** The SPIFFE URI SANs of a peer certificate as node:tls reports it (`URI:a, DNS:b`). */
function peerUris(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? "")
    .split(", ")
    .filter((e) => e.startsWith("URI:"))
    .map((e) => e.slice(4));
}

export class UpstreamSvid {
  version = 0;
  private material: Material;
  private readonly watch: FileWatch;
  private readonly trustDomain: string;
  private caVersion = -1;
  private ca: readonly string[] = [];

  constructor(
    private readonly server: string,
    private readonly config: UpstreamSpiffeTlsConfig,
    private readonly bundles: TrustBundles | null,
    private readonly log: Pick<Logger, "info" | "warn">,
    statIntervalMs = 2_000,
  ) {
    const field = `servers.${server}.tls`;
    const expected = parseSpiffeId(config.spiffe.id);
    if (!isSpiffeId(expected)) throw new ConfigError(`${field}.spiffe.id: ${expected.problem}`);
    this.trustDomain = config.spiffe.trustDomain ?? expected.trustDomain;
    if (config.svid.bundle === undefined && this.bundles?.get(this.trustDomain) === undefined)
      throw new ConfigError(
        `${field}.spiffe: trust domain ${this.trustDomain} is not in spiffe.trustDomains`,
      );
    try {
      this.material = readMaterial(config);
    } catch (err) {
      throw new ConfigError(`${field}.svid: ${(err as Error).message}`);
    }
    const files = [config.svid.cert, config.svid.key, ...(config.svid.bundle ? [config.svid.bundle] : [])];
    this.watch = watchFiles(files, () => this.reload(), statIntervalMs);
    this.bundles?.onChange(() => {
      this.version++;
    });
  }

  private reload(): void {
    try {
      this.material = readMaterial(this.config);
      this.version++;
      this.log.info({ server: this.server }, "upstream X.509-SVID reloaded");
    } catch (err) {
      this.log.warn(
        { server: this.server, err: (err as Error).message },
        "upstream X.509-SVID files changed but are not usable yet: keeping the previous ones",
      );
    }
  }

  /** The options for the next connection (forward/upstreamTls.ts `UpstreamTls`). */
  current() {
    if (this.caVersion !== this.version) {
      this.caVersion = this.version;
      this.ca =
        this.material.fileCa ??
        this.bundles?.get(this.trustDomain)?.current?.x509Authorities.map((c) => c.toString()) ??
        [];
    }
    return {
      version: this.version,
      cert: this.material.cert,
      key: this.material.key,
      ca: this.ca,
      checkServerIdentity: this.checkServerIdentity,
    };
  }

  /** The upstream is who it should be: exactly one URI SAN, the configured SPIFFE ID. */
  private readonly checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
    const uris = peerUris(cert);
    if (uris.length !== 1)
      return new Error(
        `upstream certificate has ${uris.length} URI SANs; a SPIFFE X.509-SVID has exactly one`,
      );
    if (uris[0] !== this.config.spiffe.id)
      return new Error(`upstream presented SPIFFE ID ${uris[0]}, expected ${this.config.spiffe.id}`);
    return undefined;
  };

  close(): void {
    this.watch.close();
  }
}
