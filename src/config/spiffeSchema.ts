/**
 * The SPIFFE parts of the configuration (docs/workload-identity.md): the trust domains whose
 * workloads may call (`spiffe`), and outbound SPIFFE mutual TLS to an upstream
 * (`servers.*.tls`). Part of the one schema in ./schema.ts.
 */
import { z } from "zod";

/** A SPIFFE trust domain name (SPIFFE ID §2.1): lower-case letters, digits, '.', '-', '_'. */
const TrustDomainName = z
  .string()
  .regex(
    /^[a-z0-9._-]{1,255}$/,
    "a trust domain name: lower-case letters, digits, '.', '-', '_' (no scheme, no port)",
  );

/**
 * Outbound SPIFFE mutual TLS to an https upstream (docs/workload-identity.md): the gateway
 * presents its own X.509-SVID (PEM files written by a SPIFFE helper, reloaded when they
 * change) and accepts the upstream only if its certificate chains to the trust domain's X.509
 * authorities and its one URI SAN is exactly `spiffe.id` (instead of a host name check).
 */
export const UpstreamSpiffeTls = z.strictObject({
  spiffe: z.strictObject({
    /** The SPIFFE ID the upstream must present. */
    id: z.string().startsWith("spiffe://", "a SPIFFE ID, spiffe://<trust domain>/<path>"),
    /** The trust domain whose X.509 authorities verify the upstream (default: the ID's own). */
    trustDomain: TrustDomainName.optional(),
  }),
  svid: z.strictObject({
    /** PEM file: the gateway's X.509-SVID leaf, then any intermediates. */
    cert: z.string().min(1),
    /** PEM file: the SVID's private key. */
    key: z.string().min(1),
    /** PEM file of X.509 authorities (a SPIFFE helper's bundle); default: spiffe.trustDomains' bundle. */
    bundle: z.string().min(1).optional(),
  }),
});
export type UpstreamSpiffeTlsConfig = z.infer<typeof UpstreamSpiffeTls>;

/**
 * SPIFFE workload identity (docs/workload-identity.md): the trust domains whose workloads may
 * call, each with its trust bundle (SPIFFE bundle format) from a file (reloaded when it
 * changes) or a bundle endpoint (`https_web` profile). JWT-SVIDs are then accepted as bearer
 * tokens, and X.509-SVIDs as client certificates when `listen.tls.clientAuth` asks for them.
 */
export const Spiffe = z.strictObject({
  trustDomains: z
    .array(
      z.strictObject({
        name: TrustDomainName,
        bundle: z.union([
          z.strictObject({ file: z.string().min(1) }),
          z.strictObject({
            /** https (plain http only to 127.0.0.1 / [::1] in the dev environment). */
            endpoint: z.url({ protocol: /^https?$/ }),
            refreshSeconds: z.number().int().min(5).max(86_400).default(300),
          }),
        ]),
      }),
    )
    .min(1, "list at least one trust domain")
    .refine((tds) => new Set(tds.map((t) => t.name)).size === tds.length, "a trust domain is listed twice"),
  jwtSvid: z
    .strictObject({
      /** Asymmetric algorithms only (JWT-SVID §3): HS* and none are never accepted. */
      algorithms: z
        .array(z.enum(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]))
        .min(1)
        .default(["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]),
      clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
      /** Largest number of verified JWT-SVIDs kept in memory (each until its exp). */
      cacheSize: z.number().int().positive().default(10_000),
    })
    .prefault({}),
});
export type SpiffeConfig = z.infer<typeof Spiffe>;
