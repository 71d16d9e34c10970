/**
 * SPIFFE workload identity as a running gateway holds it (docs/workload-identity.md): the
 * trust bundles of the configured trust domains, kept fresh, and the two verifiers that read
 * them (JWT-SVID bearer tokens, X.509-SVID client certificates).
 */
import type { Logger } from "pino";
import { ConfigError } from "../../config/load.js";
import type { Config, SpiffeConfig } from "../../config/schema.js";
import { JwtSvidVerifier } from "./jwtSvid.js";
import { TrustBundles, TrustDomainBundle } from "./trustBundle.js";
import { UpstreamSvid } from "./upstreamSvid.js";
import { X509SvidVerifier } from "./x509Svid.js";

export interface SpiffeRuntime {
  readonly bundles: TrustBundles;
  readonly jwtSvid: JwtSvidVerifier;
  readonly x509Svid: X509SvidVerifier;
  close(): void;
}

/** Loads every trust bundle (a bundle file that cannot be read stops startup) and starts watching. */
export async function startSpiffe(
  config: SpiffeConfig,
  environment: string,
  log: Logger,
): Promise<SpiffeRuntime> {
  const child = log.child({ part: "spiffe" });
  const bundles = new TrustBundles(
    config.trustDomains.map((td) => new TrustDomainBundle(td.name, td.bundle, child)),
  );
  for (const [i, td] of config.trustDomains.entries()) {
    try {
      await bundles.get(td.name)?.start();
    } catch (err) {
      bundles.close();
      throw new ConfigError(
        `spiffe.trustDomains.${i}.bundle.file: cannot load the trust bundle of ${td.name}: ${(err as Error).message}`,
      );
    }
  }
  return {
    bundles,
    jwtSvid: new JwtSvidVerifier(bundles, config.jwtSvid, environment),
    x509Svid: new X509SvidVerifier(bundles, environment),
    close: () => bundles.close(),
  };
}

/** The gateway's X.509-SVIDs for the HTTP servers marked `tls.spiffe`, by server name. */
export interface UpstreamSvids {
  readonly byServer: ReadonlyMap<string, UpstreamSvid>;
  close(): void;
}

export function upstreamSvids(config: Config, spiffe: SpiffeRuntime | null, log: Logger): UpstreamSvids {
  const byServer = new Map<string, UpstreamSvid>();
  const child = log.child({ part: "spiffe" });
  const close = () => {
    for (const svid of byServer.values()) svid.close();
  };
  try {
    for (const [name, server] of Object.entries(config.servers))
      if (server.transport === "http" && server.tls !== undefined)
        byServer.set(name, new UpstreamSvid(name, server.tls, spiffe?.bundles ?? null, child));
  } catch (err) {
    close();
    throw err;
  }
  return { byServer, close };
}
