/**
 * The enterprise identity providers the built-in authorization server trusts for ID-JAGs
 * (./idJag.ts), each with its signing keys: the JWK Set at the configured `jwksUri`, or at
 * the `jwks_uri` of its metadata (RFC 8414 §3, then OpenID Connect Discovery 1.0 §4), found
 * on first use so a gateway starts while its IdP is down. Keys are cached by jose's remote
 * JWK Set (one shared in-flight fetch, 10 min cache, an unknown `kid` refetches at most once
 * per 30 s) and every fetch goes through ./safeFetch.ts (https only; plain http to loopback
 * in the dev environment only; redirects refused; bounded body and time). MCP
 * "Enterprise-Managed Authorization" §7.4.1: keys over authenticated TLS, rotation by `kid`.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from "jose";
import { DEFAULT_MAX_BYTES, type SafeFetchPolicy, safeFetch } from "./safeFetch.js";

export interface EnterpriseIdpSettings {
  issuer: string;
  jwksUri?: string;
  /** Machine client ids that may redeem its assertions; null: every machine client. */
  clients: ReadonlySet<string> | null;
  algorithms: readonly string[];
}

export interface TrustedIdp extends EnterpriseIdpSettings {
  /** Its signing keys (fetched on first use). */
  keys: JWTVerifyGetKey;
}

/** Why the IdP's keys could not be found (the request is refused; the audit says why). */
export class IdpKeysUnavailable extends Error {
  override name = "IdpKeysUnavailable";
}

async function discoverJwksUri(issuer: string, policy: SafeFetchPolicy): Promise<URL> {
  const base = issuer.replace(/\/$/, "");
  const origin = new URL(issuer);
  const path = origin.pathname === "/" ? "" : origin.pathname.replace(/\/$/, "");
  const candidates = [
    `${origin.origin}/.well-known/oauth-authorization-server${path}`,
    `${base}/.well-known/openid-configuration`,
  ];
  const problems: string[] = [];
  for (const url of candidates) {
    try {
      const response = await safeFetch(url, policy, { headers: { accept: "application/json" } });
      if (response.status !== 200) {
        problems.push(`${url}: HTTP ${response.status}`);
        continue;
      }
      const metadata = JSON.parse(await response.text()) as { issuer?: unknown; jwks_uri?: unknown };
      if (metadata.issuer !== issuer) {
        problems.push(`${url}: metadata names issuer ${String(metadata.issuer)}`);
        continue;
      }
      const jwksUri = typeof metadata.jwks_uri === "string" ? URL.parse(metadata.jwks_uri) : null;
      if (jwksUri === null) {
        problems.push(`${url}: no jwks_uri`);
        continue;
      }
      return jwksUri;
    } catch (err) {
      problems.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new IdpKeysUnavailable(`cannot find the signing keys of ${issuer}: ${problems.join("; ")}`);
}

/** One IdP's keys: the JWKS location is found once (retried after a failure), then jose caches the keys. */
function remoteKeys(idp: EnterpriseIdpSettings, policy: SafeFetchPolicy): JWTVerifyGetKey {
  let keySet: Promise<JWTVerifyGetKey> | null = null;
  const load = (): Promise<JWTVerifyGetKey> => {
    if (keySet === null) {
      const located =
        idp.jwksUri === undefined
          ? discoverJwksUri(idp.issuer, policy)
          : Promise.resolve(new URL(idp.jwksUri));
      keySet = located.then((url) =>
        createRemoteJWKSet(url, {
          cooldownDuration: 30_000,
          cacheMaxAge: 10 * 60_000,
          timeoutDuration: 5_000,
          [customFetch]: (input: string, init: { headers?: HeadersInit; signal?: AbortSignal }) =>
            safeFetch(input, policy, {
              ...(init.headers ? { headers: init.headers } : {}),
              ...(init.signal ? { signal: init.signal } : {}),
            }),
        }),
      );
      keySet.catch(() => {
        keySet = null; // the next assertion tries again
      });
    }
    return keySet;
  };
  return async (header, token) => (await load())(header, token);
}

/**
 * Finds and fetches an IdP's JWK Set once, as the gateway would (`portcullis doctor`):
 * where it is and how many signing keys it holds. Throws {@link IdpKeysUnavailable}.
 */
export async function fetchIdpKeys(
  idp: Pick<EnterpriseIdpSettings, "issuer" | "jwksUri">,
  environment: string,
  timeoutMs: number,
): Promise<{ jwksUri: string; keys: number }> {
  const policy: SafeFetchPolicy = { environment, maxBytes: DEFAULT_MAX_BYTES, timeoutMs };
  const url = idp.jwksUri === undefined ? await discoverJwksUri(idp.issuer, policy) : new URL(idp.jwksUri);
  let keys: unknown;
  try {
    const response = await safeFetch(url, policy, { headers: { accept: "application/json" } });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    keys = (JSON.parse(await response.text()) as { keys?: unknown }).keys;
  } catch (err) {
    throw new IdpKeysUnavailable(`cannot fetch ${url.href}: ${(err as Error).message}`);
  }
  if (!Array.isArray(keys)) throw new IdpKeysUnavailable(`${url.href} is not a JWK Set`);
  const signing = keys.filter(
    (k) => typeof k === "object" && k !== null && (k as { use?: unknown }).use !== "enc",
  ).length;
  return { jwksUri: url.href, keys: signing };
}

/** The trusted IdPs by issuer. */
export function trustedIdps(
  settings: readonly EnterpriseIdpSettings[],
  environment: string,
): ReadonlyMap<string, TrustedIdp> {
  const policy: SafeFetchPolicy = { environment, maxBytes: DEFAULT_MAX_BYTES };
  return new Map(settings.map((idp) => [idp.issuer, { ...idp, keys: remoteKeys(idp, policy) }]));
}
