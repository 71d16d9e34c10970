/**
 * SPIFFE trust bundles (spiffe/spiffe standards/SPIFFE_Trust_Domain_and_Bundle.md §4 "SPIFFE
 * Bundle Format" and §5 "SPIFFE Bundle Endpoint"): a JWK Set whose keys carry `use`:
 * - `x509-svid`: an X.509 authority, `x5c` holding exactly one certificate (§4.2.1);
 * - `jwt-svid`: a JWT-SVID signing key, `kid` required (§4.2.2).
 * Keys of another `use` are ignored (§4.1). A bundle with a malformed x509-svid or jwt-svid
 * entry, or private key material, is refused as a whole: a half-read bundle never replaces a
 * good one.
 *
 * A trust domain's bundle comes from a file (reloaded when it changes: fs.watch on its
 * directory, which survives atomic renames, plus a periodic stat as the fallback) or from a
 * bundle endpoint (§5.2, `https_web` profile: plain web PKI TLS), fetched every
 * `refreshSeconds`. A new bundle that does not parse is logged and the previous one stays.
 */
import { createHash, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { type FileWatch, watchFiles } from "./fileWatch.js";

/** A JWT-SVID signing key of one trust domain. */
export interface JwtAuthority {
  readonly kid: string;
  readonly key: KeyObject;
  /** The JWK's `alg`, when it names one: tokens must then use exactly it. */
  readonly alg: string | null;
}

/** One trust domain's bundle, parsed. Immutable: a reload builds a new one. */
export interface ParsedBundle {
  readonly x509Authorities: readonly X509Certificate[];
  readonly jwtAuthorities: ReadonlyMap<string, JwtAuthority>;
  /** `spiffe_sequence`, when given. */
  readonly sequence: number | null;
  /** SHA-256 of the document, to tell a change from a rewrite of the same content. */
  readonly digest: string;
}

const MAX_BUNDLE_BYTES = 1024 * 1024;

/** Parses a bundle document (§4), or throws an Error saying what is wrong. */
export function parseBundle(text: string): ParsedBundle {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new Error("not a JSON object");
  const { keys, spiffe_sequence: sequence } = doc as { keys?: unknown; spiffe_sequence?: unknown };
  if (!Array.isArray(keys)) throw new Error("`keys` is not an array");
  const x509: X509Certificate[] = [];
  const jwt = new Map<string, JwtAuthority>();
  keys.forEach((entry: unknown, i) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry))
      throw new Error(`keys[${i}] is not an object`);
    const jwk = entry as Record<string, unknown>;
    if (jwk.use !== "x509-svid" && jwk.use !== "jwt-svid") return; // §4.1: ignore other uses
    for (const secret of ["d", "p", "q", "dp", "dq", "qi", "k"])
      if (secret in jwk) throw new Error(`keys[${i}] holds private key material (${secret})`);
    if (jwk.use === "x509-svid") {
      const x5c = jwk.x5c;
      if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== "string")
        throw new Error(`keys[${i}]: an x509-svid key carries exactly one certificate in x5c`);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(x5c[0], "base64"));
      } catch (err) {
        throw new Error(`keys[${i}].x5c[0] is not a DER certificate: ${(err as Error).message}`);
      }
      if (!cert.ca) throw new Error(`keys[${i}]: an X.509 authority must be a CA certificate`);
      x509.push(cert);
      return;
    }
    if (typeof jwk.kid !== "string" || jwk.kid === "")
      throw new Error(`keys[${i}]: a jwt-svid key needs a kid`);
    if (jwt.has(jwk.kid)) throw new Error(`keys[${i}]: kid ${JSON.stringify(jwk.kid)} appears twice`);
    if (jwk.kty !== "RSA" && jwk.kty !== "EC")
      throw new Error(`keys[${i}]: kty ${String(jwk.kty)} is not an asymmetric JWT-SVID key (RSA or EC)`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" });
    } catch (err) {
      throw new Error(`keys[${i}] is not a usable public key: ${(err as Error).message}`);
    }
    jwt.set(jwk.kid, { kid: jwk.kid, key, alg: typeof jwk.alg === "string" ? jwk.alg : null });
  });
  return {
    x509Authorities: x509,
    jwtAuthorities: jwt,
    sequence: typeof sequence === "number" ? sequence : null,
    digest: createHash("sha256").update(text).digest("hex"),
  };
}

export type BundleSource = { file: string } | { endpoint: string; refreshSeconds: number };

/**
 * One trust domain's current bundle, kept fresh from its source. `current` is null until a
 * valid bundle was read (everything of the trust domain is refused meanwhile: fail closed).
 */
export class TrustDomainBundle {
  current: ParsedBundle | null = null;
  /** Bumped whenever `current` changes; caches keyed by it notice a rotation. */
  generation = 0;
  private watcher: FileWatch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private loading: Promise<void> | null = null;
  private closed = false;
  private readonly listeners: Array<() => void> = [];

  constructor(
    readonly trustDomain: string,
    readonly source: BundleSource,
    private readonly log: Pick<Logger, "info" | "warn" | "error">,
    /** How often a bundle file is stat()ed, in case fs.watch misses a change. */
    private readonly statIntervalMs = 2_000,
  ) {}

  /** Called after every change of `current`. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Loads the bundle and keeps it fresh. A bundle file that cannot be read or parsed at
   * startup is a configuration error (thrown); an endpoint that does not answer yet is retried.
   */
  async start(): Promise<void> {
    if ("file" in this.source) {
      const { file } = this.source;
      this.install(parseBundle(readBundleFile(file)), "loaded");
      this.watcher = watchFiles([file], () => this.reloadFile(), this.statIntervalMs);
      return;
    }
    const { refreshSeconds } = this.source;
    await this.fetchEndpoint();
    this.timer = setInterval(() => void this.fetchEndpoint(), refreshSeconds * 1000);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  private install(next: ParsedBundle, how: string): void {
    if (this.current?.digest === next.digest) return;
    this.current = next;
    this.generation++;
    this.log.info(
      {
        trustDomain: this.trustDomain,
        x509Authorities: next.x509Authorities.length,
        jwtAuthorities: [...next.jwtAuthorities.keys()],
        sequence: next.sequence,
      },
      `SPIFFE trust bundle ${how}`,
    );
    for (const l of this.listeners) l();
  }

  private reloadFile(): void {
    if (this.closed || !("file" in this.source)) return;
    const { file } = this.source;
    try {
      this.install(parseBundle(readBundleFile(file)), "reloaded");
    } catch (err) {
      this.log.warn(
        { trustDomain: this.trustDomain, file, err: (err as Error).message },
        "SPIFFE trust bundle file changed but is not a valid bundle: keeping the previous one",
      );
    }
  }

  private fetchEndpoint(): Promise<void> {
    if (this.loading) return this.loading;
    this.loading = this.fetchOnce().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async fetchOnce(): Promise<void> {
    if (this.closed || !("endpoint" in this.source)) return;
    const { endpoint } = this.source;
    try {
      const res = await fetch(endpoint, {
        redirect: "error",
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      this.install(parseBundle(await cappedText(res)), "fetched");
    } catch (err) {
      this.log.warn(
        { trustDomain: this.trustDomain, endpoint, err: (err as Error).message },
        this.current === null
          ? "SPIFFE bundle endpoint gave no valid bundle: the trust domain is refused until it does"
          : "SPIFFE bundle endpoint refresh failed: keeping the previous bundle",
      );
    }
  }
}

/** The body as text, refused past MAX_BUNDLE_BYTES without reading the rest. */
async function cappedText(res: Response): Promise<string> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_BUNDLE_BYTES) {
    await res.body?.cancel();
    throw new Error(`bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
  }
  if (res.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_BUNDLE_BYTES) throw new Error(`bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function readBundleFile(file: string): string {
  const text = readFileSync(file, "utf8");
  if (text.length > MAX_BUNDLE_BYTES) throw new Error(`bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
  return text;
}

/** Every configured trust domain's bundle, by name. */
export class TrustBundles {
  private readonly byName: ReadonlyMap<string, TrustDomainBundle>;
  private readonly listeners: Array<() => void> = [];
  /** Bumped whenever any trust domain's bundle changes. */
  generation = 0;

  constructor(bundles: readonly TrustDomainBundle[]) {
    this.byName = new Map(bundles.map((b) => [b.trustDomain, b]));
    for (const b of bundles) b.onChange(() => this.changed());
  }

  get(trustDomain: string): TrustDomainBundle | undefined {
    return this.byName.get(trustDomain);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Called after any trust domain's bundle changed. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    for (const b of this.byName.values()) b.close();
  }

  private changed(): void {
    this.generation++;
    for (const l of this.listeners) l();
  }
}
