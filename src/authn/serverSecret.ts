/**
 * The server secret: the HMAC key under which API keys are stored. From config
 * (`serverSecret: { env | file }`, required to share one store between replicas) or
 * generated into the data directory on first start (mode 0600).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, readSecret } from "../config/load.js";
import type { Config } from "../config/schema.js";

const MIN_SECRET_BYTES = 32;

export function serverSecret(config: Config, opts: { create: boolean }): Buffer {
  if (config.serverSecret) {
    const text = readSecret(config.serverSecret, "serverSecret");
    const secret = Buffer.from(text, "utf8");
    if (secret.length < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `serverSecret: must be at least ${MIN_SECRET_BYTES} bytes (generate one with: openssl rand -base64 48)`,
      );
    }
    return secret;
  }
  const file = join(config.dataDir, "server-secret");
  if (existsSync(file)) return Buffer.from(readFileSync(file, "utf8").trim(), "base64url");
  if (!opts.create) {
    throw new ConfigError(
      `no server secret: ${file} does not exist. Run 'portcullis start' once with this data directory, or set serverSecret in the config`,
    );
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48);
  writeFileSync(file, `${secret.toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
  return secret;
}
