/**
 * Following a signing-key rotation made by another process (`portcullis oauth signing-keys
 * rotate`, RFC 7517 key sets): the stored key set's version is polled, and read again on
 * demand after the change feed reported a credential change; when it changed, the keys are
 * reloaded and handed to `onKeys` (which rebuilds the provider and the token verifier).
 * One reload at a time: concurrent callers share it.
 */
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { OAuthDatabase } from "./database.js";
import {
  loadSigningKeys,
  SIGNING_KEY_RELOAD_SECONDS,
  type SigningKey,
  signingKeySetVersion,
} from "./signingKeys.js";

export class SigningKeyRotation {
  private pending: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly db: Kysely<OAuthDatabase>,
    private readonly secret: Buffer,
    private readonly log: Logger,
    private readonly onKeys: (keys: SigningKey[]) => void,
    private version: string,
  ) {
    this.timer = setInterval(() => void this.follow(), SIGNING_KEY_RELOAD_SECONDS * 1000);
    this.timer.unref();
  }

  static async start(
    db: Kysely<OAuthDatabase>,
    secret: Buffer,
    log: Logger,
    onKeys: (keys: SigningKey[]) => void,
  ): Promise<SigningKeyRotation> {
    return new SigningKeyRotation(db, secret, log, onKeys, await signingKeySetVersion(db));
  }

  /** Reloads the keys when the stored key set changed; never rejects (a failure is logged). */
  follow(): Promise<void> {
    this.pending ??= (async () => {
      const version = await signingKeySetVersion(this.db);
      if (version === this.version) return;
      this.version = version;
      const keys = await loadSigningKeys(this.db, this.secret);
      this.onKeys(keys);
      this.log.info(
        { event: "oauth.signing_keys_reloaded", kids: keys.map((k) => k.kid) },
        "signing keys reloaded",
      );
    })()
      .catch((err: unknown) => this.log.error({ err }, "could not reload the signing keys"))
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
