/**
 * The gateway's own serving certificate (`listen.tls`), read from its secret references:
 * HTTPS instead of plain HTTP, TLS 1.2 at least.
 */
import { readSecret } from "../config/load.js";
import type { Config } from "../config/schema.js";

export type TlsListen = NonNullable<Config["listen"]["tls"]>;

export function servingTls(tls: TlsListen): { cert: string; key: string; minVersion: "TLSv1.2" } {
  return {
    cert: readSecret(tls.cert, "listen.tls.cert"),
    key: readSecret(tls.key, "listen.tls.key"),
    minVersion: "TLSv1.2",
  };
}
