/**
 * Per-request authentication cost in the steady state, measured in-process in one run:
 * an API key (checksum, environment, HMAC-SHA-256, constant-time compare) against an
 * OAuth JWT access token served from the verified-token cache (SHA-256 + map lookup), and a
 * task token (src/tasks/: SHA-256 + map lookup + the live-task and owner-key checks).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import pino from "pino";
import { issueKey } from "../src/authn/keyLifecycle.js";
import { Keyring } from "../src/authn/keyring.js";
import { OAuthTokenVerifier } from "../src/authn/oauthToken.js";
import { startSpiffe } from "../src/authn/spiffe/runtime.js";
import { compilePolicy } from "../src/authz/policy/compile.js";
import { Config, type ExternalOAuthConfig } from "../src/config/schema.js";
import { openStore } from "../src/store/open.js";
import { keyOwnerPrincipal } from "../src/tasks/owners.js";
import { startTasks } from "../src/tasks/runtime.js";
import { benchTrustDomain } from "./jwtSvid.js";

export interface AuthnCost {
  apiKeyUs: { p50: number; p99: number };
  oauthCachedUs: { p50: number; p99: number };
  /** OAuth minus API key at the median, in µs (target: ≤ 2). */
  oauthMinusApiKeyUs: number;
  /** A SPIFFE JWT-SVID served from the verified-token cache (SHA-256 + map lookup + bundle generation check). */
  jwtSvidCachedUs: { p50: number; p99: number };
  oauthFirstVerifyUs: number;
  /** A task token owned by the API key, from the verified-token cache. */
  taskCachedUs: { p50: number; p99: number };
}

const RESOURCE = "http://127.0.0.1:8080/mcp/demo";

function sample(fn: () => void, batches: number, perBatch: number): { p50: number; p99: number } {
  for (let i = 0; i < perBatch * 5; i++) fn();
  const perOp: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) fn();
    perOp.push(Number(process.hrtime.bigint() - t0) / 1000 / perBatch);
  }
  perOp.sort((a, z) => a - z);
  const at = (p: number) => perOp[Math.min(perOp.length - 1, Math.floor((p / 100) * perOp.length))] as number;
  return { p50: round(at(50)), p99: round(at(99)) };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export async function measureAuthn(quick: boolean): Promise<AuthnCost> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-authn-"));
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256" };
  const idp = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(req.url === "/jwks" ? JSON.stringify({ keys: [jwk] }) : "{}");
  });
  await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
  const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const store = await openStore(join(dir, "bench.db"));
  try {
    const config = Config.parse({
      environment: "test",
      servers: { demo: { transport: "stdio", command: "true" } },
      oauth: { mode: "external", issuer, jwksUri: `${issuer}/jwks` },
    });
    const secret = Buffer.alloc(48, 7);
    const { key, record } = await issueKey(store, secret, config, { name: "bench" });
    const keyring = new Keyring(store, secret, "test");
    await keyring.start();
    const allowAll = compilePolicy([
      { path: "bench.yaml", text: "rules:\n  - id: all\n    effect: allow\n" },
    ]);
    const tasks = await startTasks({
      store,
      secret,
      config: config.tasks,
      environment: "test",
      issuer: "http://127.0.0.1:8080",
      servers: ["demo"],
      policy: () => allowAll,
      tools: { facts: () => ({ tier: "read", openWorld: false, annotations: {} }) },
      keyring,
      record: () => {},
    });
    const owner = await keyOwnerPrincipal(store, `key:${record.id}`);
    if (owner === null) throw new Error("bench key not found");
    const minted = await tasks.service.mint(owner.principal, { purpose: "bench", grants: ["demo"] }, "cli");
    if (!minted.ok) throw new Error(`bench task refused: ${minted.reason}`);
    await keyring.refresh();
    const firstTask = await tasks.verifier.verify(minted.token, RESOURCE);
    if (!firstTask.ok) throw new Error(`bench task token refused: ${firstTask.reason}`);
    const oauth = new OAuthTokenVerifier(config.oauth as ExternalOAuthConfig, "test", null);
    const token = await new SignJWT({ scope: "mcp" })
      .setProtectedHeader({ alg: "ES256", kid: "bench" })
      .setIssuer(issuer)
      .setAudience(RESOURCE)
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(privateKey);
    const t0 = process.hrtime.bigint();
    const first = await oauth.verify(token, RESOURCE);
    const oauthFirstVerifyUs = round(Number(process.hrtime.bigint() - t0) / 1000);
    if (!first.ok) throw new Error(`bench token refused: ${first.reason}`);
    const batches = quick ? 200 : 1000;
    const perBatch = 200;
    const apiKeyUs = sample(
      () => {
        keyring.refresh();
        if (!keyring.verify(key).ok) throw new Error("bench key refused");
      },
      batches,
      perBatch,
    );
    const oauthCachedUs = sample(
      () => {
        const r = oauth.verify(token, RESOURCE);
        if (r instanceof Promise || !r.ok) throw new Error("bench token not cached");
      },
      batches,
      perBatch,
    );
    const taskCachedUs = sample(
      () => {
        keyring.refresh();
        const r = tasks.verifier.verify(minted.token, RESOURCE);
        if (r instanceof Promise || !r.ok) throw new Error("bench task token not cached");
      },
      batches,
      perBatch,
    );
    await tasks.close();
    const jwtSvidCachedUs = await measureCachedJwtSvid(dir, batches, perBatch);
    await keyring.close();
    return {
      apiKeyUs,
      oauthCachedUs,
      taskCachedUs,
      jwtSvidCachedUs,
      oauthMinusApiKeyUs: round(oauthCachedUs.p50 - apiKeyUs.p50),
      oauthFirstVerifyUs,
    };
  } finally {
    await store.close();
    idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureCachedJwtSvid(
  dir: string,
  batches: number,
  perBatch: number,
): Promise<{ p50: number; p99: number }> {
  const td = await benchTrustDomain(dir);
  const spiffe = await startSpiffe(
    Config.parse({ spiffe: td.config }).spiffe as NonNullable<Config["spiffe"]>,
    "test",
    pino({ level: "silent" }),
  );
  try {
    const svid = await td.mint(RESOURCE);
    const first = await spiffe.jwtSvid.verify(svid, RESOURCE);
    if (!first.ok) throw new Error(`bench JWT-SVID refused: ${first.reason}`);
    return sample(
      () => {
        const r = spiffe.jwtSvid.verify(svid, RESOURCE);
        if (r instanceof Promise || !r.ok) throw new Error("bench JWT-SVID not cached");
      },
      batches,
      perBatch,
    );
  } finally {
    spiffe.close();
  }
}
