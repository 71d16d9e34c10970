/**
 * A SPIFFE trust domain for the benchmark (no SPIRE here): one JWT-SVID signing key, its
 * bundle file in the SPIFFE bundle format, and JWT-SVIDs minted for a gateway endpoint, so
 * the bench can measure a workload calling through the gateway with a JWT-SVID next to the
 * API key row (docs/workload-identity.md).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export const BENCH_TRUST_DOMAIN = "bench.example";
export const BENCH_WORKLOAD = `spiffe://${BENCH_TRUST_DOMAIN}/ns/bench/sa/load`;

export interface BenchTrustDomain {
  /** The `spiffe:` block of the gateway config. */
  config: { trustDomains: Array<{ name: string; bundle: { file: string } }> };
  /** A JWT-SVID for `audience`, valid for `seconds`. */
  mint(audience: string, seconds?: number): Promise<string>;
}

export async function benchTrustDomain(work: string): Promise<BenchTrustDomain> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = "bench-jwt-svid";
  const file = join(work, `${BENCH_TRUST_DOMAIN}.bundle.json`);
  writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, use: "jwt-svid" }] }));
  return {
    config: { trustDomains: [{ name: BENCH_TRUST_DOMAIN, bundle: { file } }] },
    mint: (audience, seconds = 7200) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
        .setSubject(BENCH_WORKLOAD)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(`${seconds}s`)
        .sign(privateKey),
  };
}
