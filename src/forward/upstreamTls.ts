/**
 * TLS settings an HTTP upstream's connections take from elsewhere (SPIFFE mutual TLS,
 * src/authn/spiffe/upstreamSvid.ts, chosen by the composition root): forward/ only applies
 * them. Read when each new connection is opened, so certificates rotated on disk are used
 * from the next connection on without a restart.
 */
import type { PeerCertificate } from "node:tls";
import { buildConnector } from "undici";

export interface UpstreamTlsOptions {
  /** Bumped whenever the options below change. */
  readonly version: number;
  /** PEM: the client certificate chain and key the gateway presents. */
  readonly cert: string;
  readonly key: string;
  /** PEM: the authorities the upstream's certificate must chain to. */
  readonly ca: readonly string[];
  /** Replaces the host name check (the upstream is identified otherwise, e.g. its SPIFFE ID). */
  checkServerIdentity(host: string, cert: PeerCertificate): Error | undefined;
}

export interface UpstreamTls {
  current(): UpstreamTlsOptions;
}

/** An undici connector that opens every new connection with the TLS options in force. */
export function rotatingConnector(tls: UpstreamTls, timeoutMs: number): buildConnector.connector {
  let version = -1;
  let connector: buildConnector.connector | null = null;
  return (options, callback) => {
    const now = tls.current();
    if (connector === null || now.version !== version) {
      version = now.version;
      connector = buildConnector({
        cert: now.cert,
        key: now.key,
        ca: [...now.ca],
        checkServerIdentity: now.checkServerIdentity,
        rejectUnauthorized: true,
        timeout: timeoutMs,
      });
    }
    return connector(options, callback);
  };
}
