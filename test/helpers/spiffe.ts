/**
 * SPIFFE test material minted on the spot (no SPIRE here): X.509 authorities and X.509-SVIDs
 * with the `openssl` CLI, JWT-SVID signing keys and JWT-SVIDs with jose, and trust bundle
 * documents in the SPIFFE bundle format (JWKS with `use: x509-svid` / `jwt-svid` keys).
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { Agent } from "undici";

export interface Pem {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface Authority extends Pem {
  dir: string;
  name: string;
}

let counter = 0;
const next = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

/**
 * Why tests that mint X.509 certificates cannot run here: the `openssl` CLI is missing. Required
 * in CI (.ci/run installs it); elsewhere the tests skip with this reason printed.
 */
export function opensslSkip(): string | false {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return false;
  } catch {
    if (process.env.CI === "true") throw new Error("the openssl CLI is required in CI (.ci/run installs it)");
    const reason = "the openssl CLI is not installed (apt-get install -y openssl): X.509-SVID tests skipped";
    console.log(`# ${reason}`);
    return reason;
  }
}

function openssl(args: string[], cwd?: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-signed X.509 authority (CA) for a trust domain, as a SPIFFE CA would be. */
export function mintAuthority(dir: string, trustDomain: string): Authority {
  const name = `ca-${trustDomain}-${next()}`;
  const base = join(dir, name);
  mkdirSync(base, { recursive: true });
  const keyFile = join(base, "ca.key");
  const certFile = join(base, "ca.pem");
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    `/O=SPIFFE/CN=${trustDomain} test CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-addext",
    `subjectAltName=URI:spiffe://${trustDomain}`,
  ]);
  writeFileSync(join(base, "index.txt"), "");
  writeFileSync(join(base, "serial"), "1000\n");
  writeFileSync(
    join(base, "ca.cnf"),
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      `dir = ${base}`,
      "database = $dir/index.txt",
      "serial = $dir/serial",
      "new_certs_dir = $dir",
      "default_md = sha256",
      "policy = anything",
      "unique_subject = no",
      "copy_extensions = none",
      "[anything]",
      "commonName = optional",
      "organizationName = optional",
    ].join("\n"),
  );
  return {
    dir: base,
    name,
    keyFile,
    certFile,
    cert: readFileSync(certFile, "utf8"),
    key: readFileSync(keyFile, "utf8"),
  };
}

export interface SvidOptions {
  /** URI SANs: exactly one SPIFFE ID for a proper SVID; none or several for attacks. */
  uris: string[];
  /** DNS SANs in addition (e.g. 127.0.0.1 names for a server). */
  dns?: string[];
  /** IP SANs (a server reached at 127.0.0.1). */
  ips?: string[];
  /** Mint a CA certificate instead of a leaf (attack). */
  ca?: boolean;
  /** Validity window; default now-1h .. now+1d. */
  notBefore?: Date;
  notAfter?: Date;
}

const opensslTime = (d: Date) => `${d.toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;

/** An X.509-SVID (or a deliberately broken one) issued by `authority`. */
export function mintSvid(authority: Authority, options: SvidOptions): Pem {
  const id = next();
  const keyFile = join(authority.dir, `${id}.key`);
  const csr = join(authority.dir, `${id}.csr`);
  const certFile = join(authority.dir, `${id}.pem`);
  const ext = join(authority.dir, `${id}.ext`);
  openssl([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    csr,
    "-subj",
    "/O=SPIFFE",
  ]);
  const sans = [
    ...options.uris.map((u) => `URI:${u}`),
    ...(options.dns ?? []).map((d) => `DNS:${d}`),
    ...(options.ips ?? []).map((ip) => `IP:${ip}`),
  ];
  writeFileSync(
    ext,
    [
      "[v3]",
      options.ca ? "basicConstraints = critical,CA:TRUE" : "basicConstraints = critical,CA:FALSE",
      options.ca
        ? "keyUsage = critical,keyCertSign,cRLSign,digitalSignature"
        : "keyUsage = critical,digitalSignature,keyEncipherment,keyAgreement",
      "extendedKeyUsage = serverAuth,clientAuth",
      ...(sans.length > 0 ? [`subjectAltName = ${sans.join(",")}`] : []),
    ].join("\n"),
  );
  const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = options.notAfter ?? new Date(Date.now() + 86_400_000);
  openssl([
    "ca",
    "-batch",
    "-config",
    join(authority.dir, "ca.cnf"),
    "-cert",
    authority.certFile,
    "-keyfile",
    authority.keyFile,
    "-in",
    csr,
    "-out",
    certFile,
    "-notext",
    "-startdate",
    opensslTime(notBefore),
    "-enddate",
    opensslTime(notAfter),
    "-extfile",
    ext,
    "-extensions",
    "v3",
  ]);
  return { keyFile, certFile, cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

/** A JWT-SVID signing key: its private key and its bundle entry (`use: jwt-svid`). */
export interface JwtAuthorityKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function mintJwtAuthority(alg: "ES256" | "RS256" | "PS256" = "ES256"): Promise<JwtAuthorityKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `k-${next()}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, use: "jwt-svid" };
  return { kid, alg, privateKey, publicJwk };
}

/** A SPIFFE bundle document (JWKS) holding these X.509 and JWT authorities. */
export function bundleDocument(
  x509: readonly Pick<Pem, "cert">[],
  jwt: readonly Pick<JwtAuthorityKey, "publicJwk">[],
  sequence = 1,
): string {
  const keys = [
    ...x509.map((a) => ({
      use: "x509-svid",
      kty: "EC",
      ...publicJwkOf(a.cert),
      x5c: [new X509Certificate(a.cert).raw.toString("base64")],
    })),
    ...jwt.map((k) => k.publicJwk),
  ];
  return JSON.stringify({ keys, spiffe_sequence: sequence, spiffe_refresh_hint: 60 }, null, 2);
}

function publicJwkOf(certPem: string): Record<string, unknown> {
  const jwk = new X509Certificate(certPem).publicKey.export({ format: "jwk" }) as Record<string, unknown>;
  return jwk;
}

/** Replaces a bundle file atomically (write then rename), as a SPIFFE helper does. */
export function writeBundle(file: string, document: string): void {
  const tmp = `${file}.${next()}.tmp`;
  writeFileSync(tmp, document);
  renameSync(tmp, file);
}

export interface JwtSvidClaims {
  sub: string;
  aud?: string | string[];
  /** Seconds from now; negative for an expired token. Omit `exp` with `null`. */
  expiresIn?: number | null;
  jti?: string;
}

/** A JWT-SVID signed by `key` (its kid in the header). */
export async function mintJwtSvid(key: JwtAuthorityKey, claims: JwtSvidClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { sub: claims.sub };
  if (claims.aud !== undefined) payload.aud = claims.aud;
  if (claims.jti !== undefined) payload.jti = claims.jti;
  const jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setIssuedAt(now - 5);
  if (claims.expiresIn !== null) jwt.setExpirationTime(now + (claims.expiresIn ?? 300));
  return jwt.sign(key.privateKey);
}

/** A token with `alg: none`, or HS256 keyed with `secret`: never acceptable as a JWT-SVID. */
export async function mintUnsignedOrSymmetric(
  alg: "none" | "HS256",
  kid: string,
  claims: Record<string, unknown>,
  secret = "a-shared-secret-the-attacker-knows",
): Promise<string> {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = `${b64({ alg, kid, typ: "JWT" })}.${b64(claims)}`;
  if (alg === "none") return `${head}.`;
  const { createHmac } = await import("node:crypto");
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** An undici dispatcher that trusts `ca` and presents `client` (an X.509-SVID) if given. */
export function tlsAgent(ca: string | string[], client?: Pick<Pem, "cert" | "key">): Agent {
  return new Agent({
    connect: {
      ca,
      ...(client ? { cert: client.cert, key: client.key } : {}),
      // The gateway's serving certificate names 127.0.0.1/localhost by DNS/IP SAN.
      rejectUnauthorized: true,
    },
  });
}

/** A serving certificate for 127.0.0.1 (IP and DNS SANs) issued by `authority`. */
export function mintServerCert(authority: Authority, uris: string[] = []): Pem {
  return mintSvid(authority, { uris, dns: ["localhost"], ips: ["127.0.0.1"] });
}
